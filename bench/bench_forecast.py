"""Forecasts as files at Rossmann size: every store x 48 days x 500 draws, five levels, to parquet.

    .venv/bin/python bench/bench_forecast.py [--data-dir ../shared/data/rossmann] [--runs 3]

Fits the full data once (saved in a temporary fit folder), then runs `python -m bhm_core forecast`
in fresh processes and prints each run's wall time, the time to reopen the fit with its data, the
forecast's own time and the process's peak memory, with their medians, as a table and a last JSON
line; then as many fresh processes forecasting one store for 42 days: the reopened fit's first
forecast. Targets: the forecast to parquet in at most 10 s and 2 GB; a reopened fit's first
forecast (the process's whole wall time, imports and data included) in at most 3 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from cli_run import bhm

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rossmann"
LEVELS = ("50", "80", "90", "95", "99")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fitted = bhm("fit", "--data-dir", args.data_dir, "--out", f"{tmp}/fits")
        print(f"fit {fitted['key']}: {fitted['n_stores']} stores, {fitted['fit_seconds']:.1f} s", flush=True)
        runs = []
        for run in range(args.runs):
            began = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            out = bhm(
                "forecast",
                "--fit",
                fitted["key"],
                "--fits-dir",
                f"{tmp}/fits",
                "--data-dir",
                args.data_dir,
                "--all",
                "--horizon",
                "48",
                "--samples",
                "500",
                "--levels",
                *LEVELS,
                "--format",
                "parquet",
                "--out",
                f"{tmp}/forecast-{run}.parquet",
            )
            wall = time.perf_counter() - began
            peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
            runs.append(
                {
                    "wall_seconds": wall,
                    "open_seconds": out["open_seconds"],
                    "forecast_seconds": out["forecast_seconds"],
                    "peak_mb": peak,
                    "rows": out["n_rows"],
                }
            )
            print(
                f"run {run + 1}: wall {wall:.1f} s, reopen {out['open_seconds']:.1f} s, forecast "
                f"{out['forecast_seconds']:.1f} s, {out['n_rows']:,} rows, peak {peak:,.0f} MB",
                flush=True,
            )
        first = [_first_forecast(args, tmp, fitted["key"], run) for run in range(args.runs)]
    medians = {k: statistics.median(r[k] for r in runs) for k in ("wall_seconds", "open_seconds", "forecast_seconds")}
    first_median = {k: statistics.median(r[k] for r in first) for k in first[0]}
    print(
        f"median: wall {medians['wall_seconds']:.1f} s, reopen {medians['open_seconds']:.1f} s, forecast "
        f"{medians['forecast_seconds']:.1f} s (target 10 s), peak {max(r['peak_mb'] for r in runs):,.0f} MB "
        f"(target 2,048 MB; the largest process of the run, the fit's included)"
    )
    print(
        f"one store, 42 days, fresh process: wall {first_median['wall_seconds']:.1f} s (target 3 s), of which "
        f"reopen {first_median['open_seconds']:.1f} s and forecast {first_median['forecast_seconds']:.1f} s"
    )
    print(json.dumps({"runs": runs, "median": medians, "first_forecast": first, "first_median": first_median}))


def _first_forecast(args, tmp: str, key: str, run: int) -> dict:
    began = time.perf_counter()
    out = bhm(
        "forecast",
        "--fit",
        key,
        "--fits-dir",
        f"{tmp}/fits",
        "--data-dir",
        args.data_dir,
        "--stores",
        "1",
        "--horizon",
        "42",
        "--samples",
        "500",
        "--out",
        f"{tmp}/one-{run}.csv",
    )
    wall = time.perf_counter() - began
    print(f"one store, run {run + 1}: wall {wall:.1f} s, reopen {out['open_seconds']:.1f} s", flush=True)
    return {"wall_seconds": wall, "open_seconds": out["open_seconds"], "forecast_seconds": out["forecast_seconds"]}


if __name__ == "__main__":
    main()
