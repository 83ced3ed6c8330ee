"""The command line's options, every one checked before any work starts.

Types and ranges are checked while parsing, what needs the file system (the data folder, the output
folder, BHM_MAX_MB) by `preflight` right after: a bad value costs no loading and no fitting, and is
reported as one ``error:`` line with exit code 2, never argparse's usage block or a traceback.

Limits, and why:
- ``--samples`` 1..MAX_SAMPLES, and samples x horizon days at most MAX_SAMPLE_DAYS: posterior
  predictive draws are made CHUNK_STORES (64) stores at a time, and a chunk's arrays grow with
  samples x horizon days, not with the number of stores. Measured on a 70-store backtest: about
  1 GB at 500 samples x 50 days, 5 GB at 10,000 x 50; about 8.5 KB per sample-day, so the limit
  keeps a run near 3 GB (the default, 500 samples, allows a 500-day horizon).
- ``--steps``, ``--lr`` and ``--seed`` take FitConfig's ranges; ``--max-mb`` (or BHM_MAX_MB) sets
  how large one data file may be (data.sources.DEFAULT_MAX_BYTES without either).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import tempfile
from pathlib import Path

from bhm_core.data.sources import MAX_MB_ENV, max_bytes_setting
from bhm_core.errors import ConfigError
from bhm_core.model.config import OPTIMIZERS

MAX_SAMPLES = 10_000
MAX_SAMPLE_DAYS = 250_000
MAX_STEPS = 1_000_000  # FitConfig.steps
MAX_LEARNING_RATE = 10.0  # FitConfig.learning_rate
MAX_SEED = 2**31 - 1  # FitConfig.seed
MAX_MB = 1 << 20  # a terabyte: any larger limit is no limit
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class UsageError(ConfigError):
    """A command-line value that is not allowed; the message names the option."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        # raised, not printed: main() reports every error the same way, in one line
        raise UsageError(f"{message} (see {self.prog} --help)")


def integer(low: int | None = None, high: int | None = None):
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            allowed = f"from {low:,} to {high:,}" if high is not None else f"at least {low:,}"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value:,}")
        return value

    return parse


def positive_number(high: float):
    """An argparse type: a finite number in (0, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or not 0 < value <= high:
            most = f"{int(high):,}" if float(high).is_integer() else f"{high:g}"
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {most}, got {text}")
        return value

    return parse


def cutoff_day(text: str) -> str:
    """An argparse type: a calendar date written YYYY-MM-DD (kept as text)."""
    try:
        if not DAY.fullmatch(text.strip()):
            raise ValueError
        dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"cutoff must be a date YYYY-MM-DD like 2015-06-19, got {text!r}") from None
    return text.strip()


STEPS = integer(1, MAX_STEPS)
SEED = integer(0, MAX_SEED)
LEARNING_RATE = positive_number(MAX_LEARNING_RATE)


def data_options(command, *, demo: bool) -> None:
    command.add_argument("--data-dir", help="folder with Kaggle-layout train.csv(.gz) and store.csv")
    command.add_argument(
        "--max-mb",
        type=positive_number(MAX_MB),
        metavar="MB",
        help=f"largest data file to read, in MB (default: {MAX_MB_ENV}, else 1,024)",
    )
    if demo:
        command.add_argument(
            "--demo-stores",
            type=integer(1, 100_000),
            metavar="N",
            help="stores of the demo data without --data-dir (200)",
        )
        command.add_argument("--demo-days", type=integer(7, 5_000), metavar="N", help="days of the demo data (942)")


def fit_options(command, *, steps_default=None) -> None:
    command.add_argument("--steps", type=STEPS, default=steps_default, help=f"SVI steps (1..{MAX_STEPS:,})")
    command.add_argument("--lr", type=LEARNING_RATE, help=f"learning rate (above 0, at most {MAX_LEARNING_RATE:g})")
    command.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help="adam (default) or clipped_adam (Adam after clipping the gradient's norm)",
    )


def config_option(command) -> None:
    command.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (TOML: [fit], [priors], [features]; `config --defaults` prints one); "
        "options given here override it",
    )


def json_option(command) -> None:
    command.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def sample_options(command) -> None:
    command.add_argument(
        "--samples",
        type=integer(1, MAX_SAMPLES),
        default=500,
        help=f"posterior predictive samples (1..{MAX_SAMPLES:,}; samples x horizon days at most {MAX_SAMPLE_DAYS:,})",
    )


def preflight(args) -> None:
    """What parsing cannot check: the folders named and BHM_MAX_MB. Sets args.max_bytes."""
    try:
        args.max_bytes = max_bytes_setting(getattr(args, "max_mb", None))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    data_dir = getattr(args, "data_dir", None)
    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise UsageError(f"--data-dir {data_dir}: folder not found")
    if getattr(args, "out", None) is not None:
        # --out is a folder of fits for `fit`, a file for `forecast` and `priors` (its folder is checked)
        folder = Path(args.out).expanduser().parent if getattr(args, "out_is_file", False) else args.out
        writable_folder(str(folder), "--out" if folder == args.out else "--out (its folder)")
    if getattr(args, "summaries", None):
        writable_folder(str(Path(args.summaries).expanduser().parent), "--summaries (its folder)")
    samples, horizon = getattr(args, "samples", None), getattr(args, "horizon", None)
    if samples is not None and horizon is not None and samples * horizon > MAX_SAMPLE_DAYS:
        raise UsageError(
            f"--samples {samples:,} x --horizon {horizon:,} days is {samples * horizon:,} draws per store, above "
            f"{MAX_SAMPLE_DAYS:,} (memory); use at most {MAX_SAMPLE_DAYS // horizon:,} samples for this horizon"
        )


def writable_folder(path: str, option: str) -> None:
    """The folder exists or is created, and a file can be written in it."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
