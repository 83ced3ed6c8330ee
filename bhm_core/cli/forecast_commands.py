"""`forecast`, `serve`: a saved fit's forecasts as files and over HTTP.

FIT is a saved fit's key (under --fits-dir, default data/fits) or its folder; the data it was made
on are reloaded from its record (or --data-dir) and checked against its fingerprint.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bhm_core.cli.options import (
    MAX_SAMPLE_DAYS,
    MAX_SAMPLES,
    SEED,
    UsageError,
    cutoff_day,
    data_options,
    integer,
    json_option,
)
from bhm_core.forecast.export import DEFAULT_LEVELS, DEFAULT_SAMPLES, MAX_AHEAD_DAYS
from bhm_core.forecast.files import FORMATS


def _fit_options(command) -> None:
    command.add_argument("--fit", required=True, metavar="FIT", help="a saved fit's key (under --fits-dir) or folder")
    command.add_argument("--fits-dir", metavar="DIR", help="folder of saved fits (default: data/fits, BHM_FIT_DIR)")
    command.add_argument(
        "--calendar",
        metavar="FILE",
        help="the calendar ahead in Kaggle test.csv layout (default: the data folder's test.csv)",
    )
    data_options(command, demo=False)


def add_parsers(sub) -> None:
    fc = sub.add_parser("forecast", help="write a saved fit's forecasts (per store-day and the daily total) to files")
    _fit_options(fc)
    stores = fc.add_mutually_exclusive_group()
    stores.add_argument("--stores", type=integer(), nargs="+", metavar="ID", help="store ids of the fit")
    stores.add_argument("--all", action="store_true", help="every store of the fit")
    fc.add_argument("--start", type=cutoff_day, metavar="YYYY-MM-DD", help="first day (with --end)")
    fc.add_argument("--end", type=cutoff_day, metavar="YYYY-MM-DD", help="last day (with --start)")
    fc.add_argument("--horizon", type=integer(1, MAX_AHEAD_DAYS), metavar="DAYS", help="days after the data")
    fc.add_argument(
        "--levels",
        type=integer(1, 99),
        nargs="+",
        default=list(DEFAULT_LEVELS),
        metavar="L",
        help="central interval levels in percent (50 80 95)",
    )
    fc.add_argument(
        "--samples", type=integer(1, MAX_SAMPLES), default=DEFAULT_SAMPLES, help="predictive draws per store-day"
    )
    fc.add_argument("--seed", type=SEED, default=0)
    fc.add_argument("--draws", action="store_true", help="also write the draws (store, date, draw, sales) as parquet")
    fc.add_argument("--format", choices=FORMATS, help="csv, parquet or json (default: from --out, else csv)")
    fc.add_argument(
        "--kaggle-submission",
        metavar="TEST_CSV",
        help="forecast the store-days of a Kaggle test.csv and write Id,Sales to --out",
    )
    fc.add_argument("--out", required=True, metavar="FILE")
    json_option(fc)
    fc.set_defaults(run=cmd_forecast, out_is_file=True)
    serve = sub.add_parser("serve", help="serve a saved fit's forecasts over HTTP (FastAPI on uvicorn)")
    _fit_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=integer(1, 65_535), default=8000)
    serve.add_argument("--max-store-days", type=integer(1), default=20_000, help="store-days one request may ask")
    serve.add_argument("--max-draws", type=integer(1), default=20_000_000, help="store-days x samples per request")
    serve.add_argument("--workers", type=integer(1, 64), default=1, help="processes answering requests (one per core)")
    serve.set_defaults(run=cmd_serve, json=False, show=lambda result: None)


def check_forecast_options(args) -> None:
    """The window and store choices, before anything is loaded."""
    if args.kaggle_submission:
        if args.stores or args.all or args.start or args.end or args.horizon:
            raise UsageError(
                "--kaggle-submission takes its stores and days from the test file; drop "
                "--stores/--all/--start/--end/--horizon"
            )
        if not Path(args.kaggle_submission).expanduser().is_file():
            raise UsageError(f"--kaggle-submission {args.kaggle_submission}: file not found")
    else:
        if not (args.stores or args.all):
            raise UsageError("give --stores ID ... or --all")
        if bool(args.horizon) == bool(args.start or args.end) or bool(args.start) != bool(args.end):
            raise UsageError("give either --start and --end, or --horizon")
    days = args.horizon or 366
    if args.samples * days > MAX_SAMPLE_DAYS and not args.kaggle_submission:
        raise UsageError(
            f"--samples {args.samples:,} x {days} days is above {MAX_SAMPLE_DAYS:,} draws per store "
            f"(memory); use at most {MAX_SAMPLE_DAYS // days:,} samples"
        )


def _opened(args):
    from bhm_core.artifacts import default_fit_root
    from bhm_core.inference.programs import enable_compilation_cache
    from bhm_core.reopen import reopen

    enable_compilation_cache()
    return reopen(
        args.fit,
        args.fits_dir or default_fit_root(),
        data_dir=args.data_dir,
        calendar=args.calendar,
        max_bytes=args.max_bytes,
    )


def cmd_forecast(args) -> dict:
    from bhm_core.cli import forecasting

    check_forecast_options(args)
    started = time.perf_counter()
    opened = _opened(args)
    opened_seconds = round(time.perf_counter() - started, 3)
    if args.kaggle_submission:
        out = forecasting.kaggle_submission(opened, args)
    else:
        out = forecasting.write_forecast(opened, args, _progress(args))
    return {
        "fit": opened.key,
        **out,
        "open_seconds": opened_seconds,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _progress(args):
    def report(done: int, total: int) -> None:
        print(f"stores {done:,} of {total:,}", file=sys.stderr, flush=True)

    return report


def cmd_serve(args) -> None:
    from bhm_core.artifacts import default_fit_root
    from bhm_core.serve import process

    served = process.Served(
        fit=args.fit,
        fits_root=str(args.fits_dir or default_fit_root()),
        data_dir=args.data_dir,
        calendar=args.calendar,
        max_bytes=args.max_bytes,
        max_store_days=args.max_store_days,
        max_draws=args.max_draws,
    )

    def announce(key: str) -> None:
        where = f"http://{args.host}:{args.port}"
        print(f"serving fit {key} on {where} (docs at /docs), {args.workers} worker(s)", file=sys.stderr, flush=True)

    process.run(served, args.host, args.port, args.workers, announce)
