"""Compile once: ahead-of-time compiled chunk runners, kept per process and on disk.

The cells, the priors and every numeric setting are arguments of the runner; only shapes (bucketed)
and structure (optimizer, schedule kind, particles, chunk length, which sites train, the likelihood,
the device mesh) pick another program. JAX's persistent compilation cache keeps programs across
processes.
"""

from __future__ import annotations

import os
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
    start = time.perf_counter()
    mesh = static.get("mesh")
    options = {}
    if mesh is not None:
        plan = split_plan(args, static["batch"])
        options["in_shardings"] = tuple(shardings_of(p, mesh) for p in plan)
        options["out_shardings"] = ChunkOut(
            options["in_shardings"][1], shardings_of(False, mesh), shardings_of(False, mesh)
        )
    with TRACE_LOCK:  # lowering traces the model; compiling the lowered program does not
        lowered = jax.jit(partial(run_chunk, **static), donate_argnums=(1,), **options).lower(*args)
    compiled = lowered.compile()
    COMPILE_COUNT["n"] += 1
    _PROGRAMS[key] = compiled
    return compiled, time.perf_counter() - start
