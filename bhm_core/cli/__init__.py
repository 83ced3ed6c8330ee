"""Command line: `python -m bhm_core COMMAND ...`.

Errors a user can fix (BhmError) print one line to stderr and exit 2; never a traceback. With
--json the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bhm_core.data.sources import DemoSource, KaggleDirSource, load_dataset
from bhm_core.errors import BhmError
from bhm_core.model.config import Priors
from bhm_core.scale.run import DEFAULT_BATCH, FEATURE_SETS


def source_from_args(args):
    if args.data_dir:
        return KaggleDirSource(args.data_dir)
    size = {"n_stores": getattr(args, "demo_stores", None), "n_days": getattr(args, "demo_days", None)}
    return DemoSource(**{k: v for k, v in size.items() if v is not None})


def cmd_info(args) -> dict:
    start = time.perf_counter()
    source = source_from_args(args)
    cube = load_dataset(source).cube()
    result = {"source": source.kind, "label": source.label, **cube.summary()}
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _load_cube(args):
    source = source_from_args(args)
    cube = load_dataset(source).cube()
    if getattr(args, "stores", None):
        cube = cube.select_stores(args.stores)
    return source, cube


def cmd_fit(args) -> dict:
    from bhm_core.artifacts import FitStore, fit_or_load
    from bhm_core.inference.programs import enable_compilation_cache
    from bhm_core.model.config import FitConfig

    enable_compilation_cache()
    source, cube = _load_cube(args)
    given = {"steps": args.steps, "learning_rate": args.lr, "seed": args.seed}
    config = FitConfig(**{k: v for k, v in given.items() if v is not None})
    progress = None if args.json else (lambda step, loss: print(f"step {step:>6}  loss {loss:,.1f}", flush=True))
    store = FitStore(args.out)
    cached = fit_or_load(store, cube, config, Priors(), label=source.label, on_progress=progress)
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


def _evaluation_config(args):
    from bhm_core.inference.programs import enable_compilation_cache
    from bhm_core.model.config import FitConfig

    enable_compilation_cache()
    given = {"steps": args.steps, "learning_rate": args.lr, "seed": args.seed}
    return FitConfig(**{k: v for k, v in given.items() if v is not None})


def _progress(args):
    if args.json:
        return None
    return lambda step, loss: print(f"step {step:>6}  loss {loss:,.1f}", flush=True)


def cmd_backtest(args) -> dict:
    from bhm_core.evaluation.backtest import backtest

    config = _evaluation_config(args)
    source = source_from_args(args)
    cube = load_dataset(source).cube()
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
    from bhm_core.evaluation.backtest import coldstart_trial

    config = _evaluation_config(args)
    source = source_from_args(args)
    cube = load_dataset(source).cube()
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
    from bhm_core.errors import ConfigError
    from bhm_core.scale.run import force_cpu_devices, run_scale

    if args.series < 1 or args.steps < 1 or args.batch < 1 or (args.devices is not None and args.devices < 1):
        raise ConfigError(
            f"--series, --steps, --batch and --devices must be at least 1, got "
            f"{args.series}, {args.steps}, {args.batch}, {args.devices}"
        )
    force_cpu_devices(args.devices or 1)  # before JAX starts; no effect on GPU machines
    return run_scale(
        args.series,
        batch=args.batch,
        devices=args.devices,
        steps=args.steps,
        data_dir=args.data_dir,
        seed=args.seed,
        learning_rate=args.lr,
        summaries=args.summaries,
        features=args.features,
        on_progress=_progress(args),
    )


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def print_evaluation(result: dict) -> None:
    """Human-readable backtest / cold-start report: a header and one table row per method."""
    if result.get("known_days") is not None:
        print(
            f"cold start: {result['n_stores']} new stores, {result['known_days']} known days each, "
            f"horizon {result['horizon']} days ({result.get('n_fit_stores')} stores in the "
            f"hierarchy)"
        )
    else:
        print(f"backtest: cutoff {result['cutoff']}, horizon {result['horizon']} days, {result['n_stores']} stores")
    print(
        f"scored cells {result['n_scored_cells']:,}; fit {result['fit_seconds']:.1f} s "
        f"(compile {result['compile_seconds']:.1f} s), {result['steps']} steps, final loss "
        f"{_fmt(result['final_loss'])}"
    )
    from bhm_core.evaluation.backtest import METRIC_KEYS

    rows = {"hierarchical": result["model"], **result["baselines"]}
    width = max(len(name) for name in rows)
    print(f"{'method':<{width}}  " + "  ".join(f"{k:>11}" for k in METRIC_KEYS))
    for name, metrics in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{_fmt(metrics.get(k)):>11}" for k in METRIC_KEYS))
    entries = result["per_store"]
    if entries and entries[0].get("baseline"):
        wins = sum(1 for e in entries if e["baseline_rmspe"] is not None and e["rmspe"] < e["baseline_rmspe"])
        print(f"per store: the model beats {entries[0]['baseline']} (best baseline) on {wins} of {len(entries)} stores")
    if result.get("new_stores") is not None:
        print("new stores: " + " ".join(map(str, result["new_stores"])))


def _print_human(result: dict) -> None:
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bhm_core", description="Bayesian hierarchical sales forecasting")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="summarise a dataset (built-in demo data by default)")
    info.add_argument("--data-dir", help="folder with Kaggle-layout train.csv(.gz) and store.csv")
    info.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    info.set_defaults(run=cmd_info)
    fit = commands.add_parser("fit", help="fit the hierarchical model and save the artifact")
    fit.add_argument("--data-dir", help="folder with Kaggle-layout train.csv(.gz) and store.csv")
    fit.add_argument("--stores", type=int, nargs="+", metavar="ID", help="store ids (default: all)")
    fit.add_argument("--steps", type=int, help="SVI steps")
    fit.add_argument("--lr", type=float, help="learning rate")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", required=True, help="folder for fit artifacts (the dashboard's data/fits)")
    fit.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    fit.set_defaults(run=cmd_fit)
    _add_evaluation_commands(commands)
    _add_scale_command(commands)
    return parser


def _add_scale_command(commands) -> None:
    scale = commands.add_parser(
        "scale",
        help="fit many series with store minibatches (synthetic, or virtual stores of "
        "--data-dir) and report time per step and peak memory",
    )
    scale.add_argument("--series", required=True, type=int, metavar="N", help="number of series")
    scale.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH, metavar="B", help=f"stores per step ({DEFAULT_BATCH})"
    )
    scale.add_argument(
        "--devices", type=int, metavar="D", help="split the fit over D devices (on a CPU, D forced host devices)"
    )
    scale.add_argument("--steps", type=int, default=200, metavar="S", help="SVI steps (200)")
    scale.add_argument("--lr", type=float, help="learning rate")
    scale.add_argument("--seed", type=int, default=0, help="seed of the series and the fit")
    scale.add_argument(
        "--data-dir",
        help="Kaggle-layout folder: cut its stores into virtual series "
        "(without it: synthetic series drawn from the model)",
    )
    scale.add_argument(
        "--features",
        choices=FEATURE_SETS,
        default="reference",
        help="virtual series: the original research's 23 features (reference) or the product's default FeatureSpec",
    )
    scale.add_argument(
        "--summaries", metavar="PATH", help="also stream per-series posterior summaries to this parquet file"
    )
    scale.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    scale.set_defaults(run=cmd_scale)


def _evaluation_options(command) -> None:
    command.add_argument("--data-dir", help="folder with Kaggle-layout train.csv(.gz) and store.csv")
    command.add_argument("--seed", type=int, default=0, help="seed of the store choice, fit and samples")
    command.add_argument("--steps", type=int, help="SVI steps of the fit")
    command.add_argument("--lr", type=float, help="learning rate")
    command.add_argument("--samples", type=int, default=500, help="posterior predictive samples")
    command.add_argument(
        "--demo-stores", type=int, metavar="N", help="size of the built-in demo data when --data-dir is not given (200)"
    )
    command.add_argument("--demo-days", type=int, metavar="N", help="days of the demo data (942)")
    command.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _add_evaluation_commands(commands) -> None:
    backtest = commands.add_parser(
        "backtest", help="fit up to a cutoff, forecast the next days, score model and baselines"
    )
    backtest.add_argument("--cutoff", required=True, metavar="YYYY-MM-DD", help="last training day (inclusive)")
    backtest.add_argument(
        "--horizon", required=True, type=int, metavar="DAYS", help="days after the cutoff to forecast and score"
    )
    backtest.add_argument("--stores", type=int, metavar="N", help="a seeded random subset of N stores")
    _evaluation_options(backtest)
    backtest.set_defaults(run=cmd_backtest, show=print_evaluation)
    cold = commands.add_parser(
        "coldstart", help="hold out stores, forecast them from their first K days (global fit frozen)"
    )
    cold.add_argument(
        "--new-stores", required=True, type=int, metavar="N", help="seeded random stores held out and treated as new"
    )
    cold.add_argument(
        "--known-days",
        required=True,
        type=int,
        metavar="K",
        help="observed days each new store reveals, from its first open day",
    )
    cold.add_argument(
        "--horizon",
        type=int,
        default=42,
        metavar="DAYS",
        help="days after the K-th known day to forecast and score (42)",
    )
    _evaluation_options(cold)
    cold.set_defaults(run=cmd_coldstart, show=print_evaluation)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
    except BhmError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, always
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        getattr(args, "show", _print_human)(result)
    return 0
