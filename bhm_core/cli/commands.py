"""What each command does once its options are checked (options.py): load, fit, report a dict."""

from __future__ import annotations

import sys
import time

from bhm_core.data.sources import DemoSource, KaggleDirSource, load_dataset
from bhm_core.errors import ConfigError


def source_from_args(args):
    if args.data_dir:
        return KaggleDirSource(args.data_dir)
    size = {"n_stores": getattr(args, "demo_stores", None), "n_days": getattr(args, "demo_days", None)}
    return DemoSource(**{k: v for k, v in size.items() if v is not None})


def settings(args):
    """The settings a command runs with: the --config file's (defaults without one), the options
    given on the command line over them; checked before any data are read."""
    from bhm_core.model import settings as settings_file

    base = settings_file.load(args.config) if getattr(args, "config", None) else settings_file.Settings()
    return base.with_fit(
        steps=args.steps, learning_rate=args.lr, seed=getattr(args, "seed", None), optimizer=args.optimizer
    )


def fit_config(args):
    """FitConfig from the settings and options (FitConfig's defaults for the others)."""
    return settings(args).fit


def _progress(args):
    if args.json and not getattr(args, "progress", False):
        return None
    return lambda step, loss: print(f"step {step:>6}  loss {loss:,.1f}", flush=True)


def dataset(source, args):
    """The source's data, each note on what loading assumed printed as a warning on stderr."""
    loaded = load_dataset(source, max_bytes=args.max_bytes)
    for note in loaded.notes:
        print(f"warning: {note}", file=sys.stderr)
    return loaded


def _cube(args, spec=None):
    source = source_from_args(args)
    return source, dataset(source, args).cube(spec)


def cmd_info(args) -> dict:
    start = time.perf_counter()
    source, cube = _cube(args)
    result = {"source": source.kind, "label": source.label, **cube.summary()}
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def cmd_fit(args) -> dict:
    from bhm_core.artifacts import FitStore, fit_or_load
    from bhm_core.inference.programs import enable_compilation_cache

    chosen = settings(args)
    enable_compilation_cache()
    source = source_from_args(args)
    loaded = dataset(source, args)
    cube = loaded.cube(chosen.features)
    if args.stores:
        cube = cube.select_stores(args.stores)
    store = FitStore(args.out)
    cached = fit_or_load(
        store,
        cube,
        chosen.fit,
        chosen.priors,
        label=source.label,
        on_progress=_progress(args),
        source=source,
        rows=loaded.file_rows,
    )
    if cached.note:
        print(f"note: {cached.note}", file=sys.stderr)
    made_current = args.make_current or store.current_key() is None
    if made_current and not cached.result.meta.get("cancelled"):
        store.set_current(cached.key)
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
        "current": store.current_key() == cached.key,
    }


def _evaluation_setup(args):
    from bhm_core.inference.programs import enable_compilation_cache

    chosen = settings(args)
    enable_compilation_cache()
    source, cube = _cube(args, chosen.features)
    return chosen, source, cube


def cmd_backtest(args) -> dict:
    from bhm_core.evaluation.backtest import backtest

    chosen, source, cube = _evaluation_setup(args)
    evaluation = backtest(
        cube,
        args.cutoff,
        args.horizon,
        stores=args.stores,
        seed=chosen.fit.seed,
        config=chosen.fit,
        priors=chosen.priors,
        n_samples=args.samples,
        on_progress=_progress(args),
    )
    return {**evaluation.summary, "source": source.kind}


def cmd_coldstart(args) -> dict:
    from bhm_core.evaluation.coldstart import coldstart_trial

    chosen, source, cube = _evaluation_setup(args)
    evaluation = coldstart_trial(
        cube,
        args.new_stores,
        args.known_days,
        args.horizon,
        seed=chosen.fit.seed,
        config=chosen.fit,
        priors=chosen.priors,
        n_samples=args.samples,
        on_progress=_progress(args),
    )
    return {**evaluation.summary, "source": source.kind}


def cmd_scale(args) -> dict:
    from bhm_core.scale import processes
    from bhm_core.scale.run import force_cpu_devices, run_scale

    n = args.processes or 1
    processes.check_processes(n, args.series, args.process_id)
    if (args.process_id is None) != (args.coordinator is None):
        raise ConfigError("a cluster run needs both --process-id and --coordinator (and --processes)")
    if args.coordinator is not None:
        processes.check_coordinator(args.coordinator)
    if n > 1 and args.process_id is None:  # the launcher: N children of this command, process 0's result
        return processes.launch(_scale_argv(args), n, args.timeout, on_line=_line_printer(args))
    force_cpu_devices(args.devices or 1)  # before JAX starts; no effect on GPU machines
    devices = args.devices
    if args.process_id is not None:
        import jax

        processes.join(args.process_id, n, args.coordinator, args.timeout)
        devices = jax.devices()  # the mesh spans every process's devices
    return run_scale(
        args.series,
        batch=args.batch,
        devices=devices,
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


def _scale_argv(args) -> list[str]:
    """The scale command a launched process runs: these options, its result as JSON."""
    argv = ["scale", "--series", str(args.series), "--batch", str(args.batch), "--steps", str(args.steps)]
    argv += ["--seed", str(args.seed), "--features", args.features, "--json"]
    optional = {
        "--devices": args.devices,
        "--lr": args.lr,
        "--optimizer": args.optimizer,
        "--data-dir": args.data_dir,
        "--max-mb": args.max_mb,
        "--summaries": args.summaries,
    }
    for flag, value in optional.items():
        if value is not None:
            argv += [flag, str(value)]
    return argv if args.json else [*argv, "--progress"]


def _line_printer(args):
    return None if args.json else lambda line: print(line, flush=True)
