"""What each command does once its options are checked (options.py): load, fit, report a dict."""

from __future__ import annotations

import sys
import time

from bhm_core.data.sources import DemoSource, KaggleDirSource, load_dataset
from bhm_core.model.config import Priors


def source_from_args(args):
    if args.data_dir:
        return KaggleDirSource(args.data_dir)
    size = {"n_stores": getattr(args, "demo_stores", None), "n_days": getattr(args, "demo_days", None)}
    return DemoSource(**{k: v for k, v in size.items() if v is not None})


def fit_config(args):
    """FitConfig from the options given (FitConfig's defaults for the others); before any data."""
    from bhm_core.model.config import FitConfig

    given = {"steps": args.steps, "learning_rate": args.lr, "seed": args.seed, "optimizer": args.optimizer}
    return FitConfig(**{k: v for k, v in given.items() if v is not None})


def _progress(args):
    if args.json:
        return None
    return lambda step, loss: print(f"step {step:>6}  loss {loss:,.1f}", flush=True)


def _cube(args):
    source = source_from_args(args)
    return source, load_dataset(source, max_bytes=args.max_bytes).cube()


def cmd_info(args) -> dict:
    start = time.perf_counter()
    source, cube = _cube(args)
    result = {"source": source.kind, "label": source.label, **cube.summary()}
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def cmd_fit(args) -> dict:
    from bhm_core.artifacts import FitStore, fit_or_load
    from bhm_core.inference.programs import enable_compilation_cache

    config = fit_config(args)
    enable_compilation_cache()
    source, cube = _cube(args)
    if args.stores:
        cube = cube.select_stores(args.stores)
    store = FitStore(args.out)
    cached = fit_or_load(store, cube, config, Priors(), label=source.label, on_progress=_progress(args))
    if cached.note:
        print(f"note: {cached.note}", file=sys.stderr)
    meta = cached.result.meta
    return {
        "key": cached.key,
        "path": str(store.path(cached.key)),
        "from_cache": cached.from_cache,
        "source": source.kind,
        "n_stores": cube.n_stores,
        "n_cells": meta.get("n_cells"),
        "steps": meta.get("steps"),
        "fit_seconds": round(meta.get("seconds", 0.0), 3),
        "compile_seconds": round(meta.get("compile_seconds", 0.0), 3),
        "final_loss": cached.result.final_loss,
    }


def _evaluation_setup(args):
    from bhm_core.inference.programs import enable_compilation_cache

    config = fit_config(args)
    enable_compilation_cache()
    source, cube = _cube(args)
    return config, source, cube


def cmd_backtest(args) -> dict:
    from bhm_core.evaluation.backtest import backtest

    config, source, cube = _evaluation_setup(args)
    evaluation = backtest(
        cube,
        args.cutoff,
        args.horizon,
        stores=args.stores,
        seed=args.seed,
        config=config,
        n_samples=args.samples,
        on_progress=_progress(args),
    )
    return {**evaluation.summary, "source": source.kind}


def cmd_coldstart(args) -> dict:
    from bhm_core.evaluation.coldstart import coldstart_trial

    config, source, cube = _evaluation_setup(args)
    evaluation = coldstart_trial(
        cube,
        args.new_stores,
        args.known_days,
        args.horizon,
        seed=args.seed,
        config=config,
        n_samples=args.samples,
        on_progress=_progress(args),
    )
    return {**evaluation.summary, "source": source.kind}


def cmd_scale(args) -> dict:
    from bhm_core.scale.run import force_cpu_devices, run_scale

    force_cpu_devices(args.devices or 1)  # before JAX starts; no effect on GPU machines
    return run_scale(
        args.series,
        batch=args.batch,
        devices=args.devices,
        steps=args.steps,
        data_dir=args.data_dir,
        seed=args.seed,
        learning_rate=args.lr,
        optimizer=args.optimizer or "adam",
        max_bytes=args.max_bytes,
        summaries=args.summaries,
        features=args.features,
        on_progress=_progress(args),
    )
