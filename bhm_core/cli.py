"""Command line: `python -m bhm_core COMMAND ...`.

Errors a user can fix (BhmError) print one line to stderr and exit 2; never a traceback. With
--json the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

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
