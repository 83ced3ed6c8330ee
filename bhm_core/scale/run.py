"""Scale experiments: build many series (virtual Rossmann stores or synthetic ones), fit them with
store minibatches on one or several devices, and report time per step and peak memory.

Used by `python -m bhm_core scale` and bench/bench_scale.py. The fit is the one every fit runs
(`inference.fit.fit_cells`, the lower level of `fit`), not a separate code path.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from bhm_core.errors import ConfigError

DEFAULT_BATCH = 1024
FEATURE_SETS = ("reference", "default")


def force_cpu_devices(n: int) -> None:
    """Before JAX's backends start (importing jax is fine): let a CPU-only machine show n devices
    (ignored by GPU/TPU backends). An XLA_FLAGS device count set by the caller wins."""
    if n > 1 and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        import jax

        jax.config.update("jax_num_cpu_devices", n)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_series(
    n_series: int, data_dir: str | None = None, seed: int = 0, features: str = "reference", max_bytes: int | None = None
):
    """Virtual stores of the Kaggle-layout data in data_dir, or synthetic series without it.

    features: 'reference' (the original research's design) or 'default' (the product's FeatureSpec;
    virtual series only: synthetic ones always have the reference design). max_bytes: the largest
    data file read (data.sources.load_dataset).
    """
    from bhm_core.scale.virtual import synthetic_series, virtual_series

    if features not in FEATURE_SETS:
        raise ConfigError(f"features must be one of {list(FEATURE_SETS)}, got {features!r}")
    if data_dir:
        from bhm_core.data.features import FeatureSpec
        from bhm_core.data.sources import KaggleDirSource, load_dataset

        spec = FeatureSpec.reference() if features == "reference" else None
        return virtual_series(
            load_dataset(KaggleDirSource(data_dir), max_bytes=max_bytes).cube(spec), n_series, seed=seed
        )
    return synthetic_series(n_series, seed=seed)


def loss_drift(losses: np.ndarray, windows: int = 10) -> float:
    """Relative change of the mean loss between the last two tenths of the run: 'stable' when small."""
    losses = losses[np.isfinite(losses)]
    if len(losses) < 2 * windows:
        return float("nan")
    parts = np.array_split(losses, windows)
    last, before = float(np.mean(parts[-1])), float(np.mean(parts[-2]))
    return abs(last - before) / abs(last)


def _finite(value: float):
    return value if np.isfinite(value) else None


def run_scale(
    n_series: int,
    *,
    batch: int | None = DEFAULT_BATCH,
    devices: int | None = None,
    steps: int = 200,
    data_dir: str | None = None,
    seed: int = 0,
    learning_rate: float | None = None,
    optimizer: str = "adam",
    max_bytes: int | None = None,
    summaries: str | None = None,
    features: str = "reference",
    on_progress=None,
) -> dict:
    """Build the series, fit them, and return the figures `python -m bhm_core scale` prints.

    devices: as fit_cells's (on a run of several processes, jax.devices(): every process's)."""
    import jax

    from bhm_core.inference.fit import fit_cells
    from bhm_core.inference.programs import enable_compilation_cache
    from bhm_core.model.config import FitConfig

    enable_compilation_cache()
    started = time.perf_counter()
    series = build_series(n_series, data_dir, seed, features, max_bytes)
    build_seconds = time.perf_counter() - started
    # None keeps FitConfig's own default learning rate
    lr = {} if learning_rate is None else {"learning_rate": learning_rate}
    chunk = max(1, min(steps // 4, 100))
    config = FitConfig(steps=steps, batch_size=batch, chunk_steps=chunk, seed=seed, optimizer=optimizer, **lr)
    ticks = []

    def progress(step, loss):
        ticks.append((time.perf_counter(), step))
        if on_progress is not None:
            on_progress(step, loss)

    result = fit_cells(series.data, config, devices=devices, on_progress=progress)
    # steady time per step: between the first and the last chunk (the first call pays one-off costs)
    per_step = (ticks[-1][0] - ticks[0][0]) / (ticks[-1][1] - ticks[0][1]) if len(ticks) >= 2 else None
    out = _report(series, result, per_step, build_seconds)
    if summaries and jax.process_index() == 0:  # several processes: every one holds the result; one writes it
        from bhm_core.forecast.stream import posterior_to_parquet

        written = posterior_to_parquet(result, summaries, seed=seed)
        out.update(summaries=written["path"], summary_rows=written["rows"], peak_rss_mb=round(peak_rss_mb(), 1))
    return out


def _report(series, result, per_step: float | None, build_seconds: float) -> dict:
    import jax

    meta = result.meta
    return {
        "n_series": series.data.n_stores,
        "n_cells": int(meta["n_cells"]),
        "seconds_per_step": round(meta["seconds_per_step"] if per_step is None else per_step, 6),
        "steps": meta["steps_this_run"],
        "fit_seconds": round(meta["seconds"], 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "devices": meta["devices"],
        "processes": jax.process_count(),
        "batch": meta["batch_size"],
        "source": series.data.info.get("series"),
        "platform": jax.devices()[0].platform,
        "n_features": len(result.feature_names),
        "build_seconds": round(build_seconds, 3),
        "prepare_seconds": round(meta["prepare_seconds"], 3),
        "compile_seconds": round(meta["compile_seconds"], 3),
        "final_loss": _finite(result.final_loss),
        "loss_drift": _finite(loss_drift(result.losses)),
        "loss_tenths": [round(float(np.mean(part)), 1) for part in np.array_split(result.losses, 10) if len(part)],
    }
