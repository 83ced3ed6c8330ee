"""Command line: `python -m bhm_core COMMAND ...`.

Errors a user can fix (BhmError) print one line to stderr and exit 2; never a traceback. With
--json the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .config import Priors
from .errors import BhmError
from .sources import DemoSource, KaggleDirSource, load_dataset


def source_from_args(args):
    return KaggleDirSource(args.data_dir) if args.data_dir else DemoSource()


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
    from .artifacts import FitStore, fit_or_load
    from .config import FitConfig
    from .engine import enable_compilation_cache
    enable_compilation_cache()
    source, cube = _load_cube(args)
    given = {"steps": args.steps, "learning_rate": args.lr, "seed": args.seed}
    config = FitConfig(**{k: v for k, v in given.items() if v is not None})
    progress = None if args.json else (lambda step, loss: print(f"step {step:>6}  loss {loss:,.1f}",
                                                                  flush=True))
    store = FitStore(args.out)
    cached = fit_or_load(store, cube, config, Priors(), label=source.label, on_progress=progress)
    if cached.note:
        print(f"note: {cached.note}", file=sys.stderr)
    meta = cached.result.meta
    return {"key": cached.key, "path": str(store.path(cached.key)), "from_cache": cached.from_cache,
            "source": source.kind, "n_stores": cube.n_stores, "n_cells": meta.get("n_cells"),
            "steps": meta.get("steps"), "fit_seconds": round(meta.get("seconds", 0.0), 3),
            "compile_seconds": round(meta.get("compile_seconds", 0.0), 3),
            "final_loss": cached.result.final_loss}


def _print_human(result: dict) -> None:
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bhm_core",
                                     description="Bayesian hierarchical sales forecasting")
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
    return parser


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
        _print_human(result)
    return 0
