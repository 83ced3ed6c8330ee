"""The commands and their options (checked as they are parsed: options.py)."""

from __future__ import annotations

import argparse

from bhm_core.cli import commands, fits_commands, forecast_commands, retrain_commands, settings_commands
from bhm_core.cli.options import (
    SEED,
    Parser,
    config_option,
    cutoff_day,
    data_options,
    fit_options,
    integer,
    json_option,
    positive_number,
    sample_options,
)
from bhm_core.cli.report import print_evaluation
from bhm_core.scale.processes import DEFAULT_TIMEOUT
from bhm_core.scale.run import DEFAULT_BATCH, FEATURE_SETS

MAX_TIMEOUT = 7 * 86_400.0  # a week
HORIZON = integer(1, 100_000)  # the data bound it further (backtest.check_window)


def build_parser() -> Parser:
    parser = Parser(prog="python -m bhm_core", description="Bayesian hierarchical sales forecasting")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="summarise a dataset (built-in demo data by default)")
    data_options(info, demo=False)
    json_option(info)
    info.set_defaults(run=commands.cmd_info)
    fit = sub.add_parser("fit", help="fit the hierarchical model and save the artifact")
    data_options(fit, demo=True)
    fit.add_argument("--stores", type=integer(), nargs="+", metavar="ID", help="store ids (default: all)")
    fit_options(fit)
    config_option(fit)
    fit.add_argument("--seed", type=SEED, help="seed of the fit (default: the settings', 0)")
    fit.add_argument("--out", required=True, help="folder for fit artifacts (the dashboard's data/fits)")
    fit.add_argument(
        "--make-current",
        action="store_true",
        help="make this fit the folder's current one (what `serve --fit current` serves); a folder's first "
        "fit becomes current anyway",
    )
    json_option(fit)
    fit.set_defaults(run=commands.cmd_fit)
    _add_evaluation_commands(sub)
    _add_scale_command(sub)
    settings_commands.add_parsers(sub)
    forecast_commands.add_parsers(sub)
    retrain_commands.add_parsers(sub)
    fits_commands.add_parsers(sub)
    return parser


def _add_scale_command(sub) -> None:
    scale = sub.add_parser(
        "scale",
        help="fit many series with store minibatches (synthetic, or virtual stores of "
        "--data-dir) and report time per step and peak memory",
    )
    scale.add_argument("--series", required=True, type=integer(1), metavar="N", help="number of series")
    scale.add_argument(
        "--batch", type=integer(1), default=DEFAULT_BATCH, metavar="B", help=f"stores per step ({DEFAULT_BATCH})"
    )
    scale.add_argument(
        "--devices",
        type=integer(1),
        metavar="D",
        help="split the fit over D devices (on a CPU, D forced host devices)",
    )
    fit_options(scale, steps_default=200)
    scale.add_argument("--seed", type=SEED, default=0, help="seed of the series and the fit")
    data_options(scale, demo=False)
    scale.add_argument(
        "--features",
        choices=FEATURE_SETS,
        default="reference",
        help="virtual series: the original research's 23 features (reference) or the product's default FeatureSpec",
    )
    scale.add_argument(
        "--summaries", metavar="PATH", help="also stream per-series posterior summaries to this parquet file"
    )
    _process_options(scale)
    json_option(scale)
    scale.set_defaults(run=commands.cmd_scale)


def _process_options(scale) -> None:
    scale.add_argument(
        "--processes",
        type=integer(1),
        metavar="N",
        help="run the fit as N JAX processes (at most the series): alone, N children on this machine; with "
        "--process-id and --coordinator, this is one of N processes of a cluster (one per host or GPU)",
    )
    scale.add_argument(
        "--process-id", type=integer(0), metavar="I", help="this process's number in a cluster run, 0 to N-1"
    )
    scale.add_argument(
        "--coordinator", metavar="HOST:PORT", help="cluster run: process 0's address, the same for every process"
    )
    scale.add_argument(
        "--timeout",
        type=positive_number(MAX_TIMEOUT),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"with --processes: seconds the whole run may take before every process is killed ({DEFAULT_TIMEOUT:g})",
    )
    scale.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # progress lines with --json


def _evaluation_options(command) -> None:
    data_options(command, demo=True)
    command.add_argument(
        "--seed", type=SEED, help="seed of the store choice, fit and samples (default: the settings', 0)"
    )
    fit_options(command)
    config_option(command)
    sample_options(command)
    json_option(command)


def _add_evaluation_commands(sub) -> None:
    backtest = sub.add_parser("backtest", help="fit up to a cutoff, forecast the next days, score model and baselines")
    backtest.add_argument("--cutoff", required=True, type=cutoff_day, metavar="YYYY-MM-DD", help="last training day")
    backtest.add_argument(
        "--horizon", required=True, type=HORIZON, metavar="DAYS", help="days after the cutoff to forecast and score"
    )
    backtest.add_argument("--stores", type=integer(1), metavar="N", help="a seeded random subset of N stores")
    _evaluation_options(backtest)
    backtest.set_defaults(run=commands.cmd_backtest, show=print_evaluation)
    cold = sub.add_parser(
        "coldstart", help="hold out stores, forecast them from their first K days (global fit frozen)"
    )
    cold.add_argument(
        "--new-stores",
        required=True,
        type=integer(1),
        metavar="N",
        help="seeded random stores held out and treated as new",
    )
    cold.add_argument(
        "--known-days",
        required=True,
        type=integer(1),
        metavar="K",
        help="observed days each new store reveals, from its first open day",
    )
    cold.add_argument(
        "--horizon",
        type=HORIZON,
        default=42,
        metavar="DAYS",
        help="days after the K-th known day to forecast and score (42)",
    )
    _evaluation_options(cold)
    cold.set_defaults(run=commands.cmd_coldstart, show=print_evaluation)
