"""Scale: time per step against batch size, number of series and devices; peak memory;
a fit of 10^5 virtual Rossmann series to a stable loss. Every row is a fresh process running

    python -m bhm_core scale --series N --batch B --steps S [--devices D] [--data-dir DIR] --json

so compile time and peak RSS are those of a user's process. Prints a table and a final JSON line.

    .venv/bin/python bench/bench_scale.py [--data-dir ../shared/data/rossmann] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rossmann"
RUNS: dict = {}  # one subprocess per distinct command line; tables share runs


def scale(
    series: int,
    batch: int,
    steps: int,
    devices: int | None = None,
    data_dir: str | None = None,
    features: str = "reference",
) -> dict:
    args = ["--series", str(series), "--batch", str(batch), "--steps", str(steps), "--features", features]
    if devices is not None:
        args += ["--devices", str(devices)]
    if data_dir:
        args += ["--data-dir", data_dir]
    key = tuple(args)
    if key not in RUNS:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        done = subprocess.run(
            [sys.executable, "-m", "bhm_core", "scale", *args, "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode != 0:
            raise SystemExit(f"scale {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        RUNS[key] = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"  done: {' '.join(args)} -> {RUNS[key]['seconds_per_step'] * 1e3:.1f} ms/step, "
            f"{RUNS[key]['peak_rss_mb']:,.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    return RUNS[key]


def row(label: str, r: dict, note: str = "") -> tuple:
    return (
        label,
        r["n_series"],
        r["n_cells"],
        r["batch"],
        r["devices"],
        r["seconds_per_step"] * 1e3,
        r["peak_rss_mb"],
        r["build_seconds"] + r["fit_seconds"],
        note,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--quick", action="store_true", help="10x fewer series, for a smoke run")
    parser.add_argument("--steps", type=int, default=200, help="steps of the timing runs")
    parser.add_argument("--virtual-steps", type=int, default=2000, help="steps of the virtual fits")
    args = parser.parse_args()
    k = 10 if args.quick else 1
    steps = args.steps
    rows = []
    base = 100_000 // k
    for batch in (256, 1024, 4096):  # linear in the batch
        rows.append(row("batch sweep", scale(base, batch, steps)))
    for series in (10_000 // k, 100_000 // k, 1_000_000 // k):  # flat in the series
        rows.append(row("series sweep", scale(series, 1024, steps), "<4 GB at 1e5, <12 GB at 1e6"))
    one = scale(base, 1024, steps, devices=1)
    for devices in (1, 2, 4):  # forced CPU devices
        r = scale(base, 1024, steps, devices=devices)
        gap = abs(r["final_loss"] - one["final_loss"]) / abs(one["final_loss"])
        rows.append(row("devices", r, f"final loss vs 1 device: {gap:.1e}"))
    virtual = {}
    if Path(args.data_dir, "store.csv").is_file():
        for features in ("reference", "default"):
            r = virtual[features] = scale(base, 2048, args.virtual_steps, data_dir=args.data_dir, features=features)
            rows.append(
                row(
                    f"virtual, {features}",
                    r,
                    f"F={r['n_features']}, {r['steps']} steps, drift {r['loss_drift']:.1e}, target 10 min",
                )
            )
    else:
        print(f"no Rossmann data at {args.data_dir}: virtual row skipped", file=sys.stderr)
    head = ("run", "series", "cells", "batch", "devices", "ms/step", "peak MB", "total s", "note")
    print(
        f"{head[0]:<17}{head[1]:>9}{head[2]:>12}{head[3]:>7}{head[4]:>8}{head[5]:>9}{head[6]:>9}{head[7]:>8}  {head[8]}"
    )
    for r in rows:
        print(f"{r[0]:<17}{r[1]:>9,}{r[2]:>12,}{r[3]:>7}{r[4]:>8}{r[5]:>9.1f}{r[6]:>9,.0f}{r[7]:>8.1f}  {r[8]}")
    print(json.dumps({"rows": [dict(zip(head, r)) for r in rows], "virtual": virtual}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
