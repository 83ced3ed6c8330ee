"""Compile once: ahead-of-time compiled chunk runners, kept per process and on disk.

The cells, the priors and every numeric setting are arguments of the runner; only shapes (bucketed)
and structure (optimizer, schedule kind, particles, chunk length, which sites train, the likelihood,
the device mesh) pick another program. JAX's persistent compilation cache keeps programs across
processes.
"""

from __future__ import annotations

import os
import threading
import time
from functools import partial
from pathlib import Path

import jax
import numpy as np

from bhm_core import paths
from bhm_core.inference.sharding import shardings_of
from bhm_core.inference.step import ChunkOut, run_chunk, split_plan
from bhm_core.model.tracing import TRACE_LOCK

COMPILE_COUNT = {"n": 0}  # programs built by this process (tests assert no recompilation)
_PROGRAMS: dict = {}
_LOCKS: dict = {}  # one per program key: a fit waits for the warm-up compiling its program
_GUARD = threading.Lock()
_COMPILING: set = set()  # threads building (or waiting for) a program now


def compiling(thread_id: int | None = None) -> bool:
    """Whether the thread (the calling one by default) is building or waiting for a program: what
    a progress display calls the compiling phase."""
    return (threading.get_ident() if thread_id is None else thread_id) in _COMPILING


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path:
    """Persist compiled programs so that a restarted app or CLI does not compile again."""
    path = Path(directory or os.environ.get("BHM_JAX_CACHE") or paths.data_root() / "jax_cache")
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


def _signature(a):
    dtype = a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype  # never copies device arrays
    return np.shape(a), np.dtype(dtype).str


def program(args, static: dict):
    """The compiled runner for these arguments' shapes and this structure; (program, compile seconds).

    The state (argument 1) is donated: each chunk updates the guide parameters and optimizer
    moments in place instead of copying (S, F) arrays.
    """
    shapes = jax.tree.map(_signature, args)
    key = (str(jax.tree.structure(args)), str(shapes), tuple(sorted(static.items(), key=lambda kv: kv[0])))
    if key in _PROGRAMS:
        return _PROGRAMS[key], 0.0
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    me = threading.get_ident()
    _COMPILING.add(me)
    start = time.perf_counter()
    try:
        with lock:  # a second thread asking for the same program waits instead of compiling it too
            if key not in _PROGRAMS:
                _PROGRAMS[key] = _compile(args, static)
                COMPILE_COUNT["n"] += 1
    finally:
        _COMPILING.discard(me)
    return _PROGRAMS[key], time.perf_counter() - start


def _compile(args, static: dict):
    mesh = static.get("mesh")
    options = {}
    if mesh is not None:
        plan = split_plan(args, static["batch"])
        options["in_shardings"] = tuple(shardings_of(p, mesh) for p in plan)
        options["out_shardings"] = ChunkOut(
            options["in_shardings"][1], shardings_of(False, mesh), shardings_of(False, mesh)
        )
    with TRACE_LOCK:  # tracing runs the model under NumPyro's handlers; compiling does not
        lowered = jax.jit(partial(run_chunk, **static), donate_argnums=(1,), **options).lower(*args)
    return lowered.compile()
