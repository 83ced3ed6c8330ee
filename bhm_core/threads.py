"""One BLAS thread for the library's linear algebra.

What the library hands to BLAS/LAPACK is many small matrices (a store's F x F normal equations,
its posterior covariance and Cholesky factor), where threads inside one small solve buy nothing and
OpenBLAS's spinning threads cost a lot once the cores are shared: on two busy cores, the start's
batched inverses of 50 stores took 0.2 to 8 s with two threads and 0.05 s with one; for 1,115
stores 4-5 s against 0.7 s. JAX runs on its own thread pool and is not affected.
"""

from __future__ import annotations

import ctypes
import os
import sys

SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")


def single_threaded_blas() -> bool:
    """Ask for one BLAS thread: through the environment when NumPy is not loaded yet, else through
    the loaded OpenBLAS itself. A BHM_BLAS_THREADS setting, or OPENBLAS_NUM_THREADS set by the
    user, wins. True when a loaded library was set."""
    wanted = os.environ.get("BHM_BLAS_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "1"
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", wanted)
        return False
    return _set_loaded(int(wanted))


def _set_loaded(n: int) -> bool:
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:  # not Linux: leave the library's default
        return False
    done = False
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(n))
                done = True
                break
    return done
