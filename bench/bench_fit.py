"""Engine speed and memory on the real Rossmann data, medians of fresh processes.

    .venv/bin/python bench/bench_fit.py [--data-dir ../shared/data/rossmann] [--runs 3]
                                        [--likelihood log_student_t]   # another observation law

Each measurement runs in its own interpreter so that compile time and peak memory (ru_maxrss) are
those of a user's fresh process. Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rossmann"
CUTOFF, HORIZON_END = "2015-06-19", "2015-07-31"


def child(mode: str, data_dir: str, steps: int | None, fit_dir: str, likelihood: str | None) -> dict:
    sys.path.insert(0, str(ROOT))
    from bhm_core.artifacts import FitStore
    from bhm_core.data.sources import KaggleDirSource, load_dataset
    from bhm_core.evaluation.metrics import score_dict
    from bhm_core.forecast.predict import forecast
    from bhm_core.inference.fit import fit
    from bhm_core.inference.programs import enable_compilation_cache
    from bhm_core.model.config import FitConfig
    from bhm_core.scale.run import peak_rss_mb

    if os.environ.get("BENCH_COMPILE_CACHE"):
        enable_compilation_cache(os.environ["BENCH_COMPILE_CACHE"])
    # The trend's origin and each store's season profile end at the cutoff, as in a backtest:
    # with the data's last day as origin the profile would be built from the holdout itself.
    full = load_dataset(KaggleDirSource(data_dir)).cube().with_origin(CUTOFF)
    config = FitConfig(
        **({} if steps is None else {"steps": steps}), **({"likelihood": likelihood} if likelihood else {})
    )
    if mode == "full":
        cube = full.select_days(None, CUTOFF)
        start = time.perf_counter()
        result = fit(cube, config)
        seconds = time.perf_counter() - start
        FitStore(fit_dir).save(result, "0" * 20)
        fc = forecast(result, full, first="2015-06-20", last=HORIZON_END, n_samples=200)
        scores = score_dict(fc[fc["y"].notna()])["hierarchical"]
        return {
            "seconds": seconds,
            "compile_seconds": result.meta["compile_seconds"],
            "steps": result.meta["steps"],
            "final_loss": result.final_loss,
            "rmspe": scores["rmspe"],
            "peak_mb": peak_rss_mb(),
        }
    if mode == "predict":
        result = FitStore(fit_dir).load("0" * 20)
        # compiles the programs of the timed window (a chunk's shape: 64 stores x its padded days)
        forecast(result, full, result.store_ids[:64], "2015-06-20", HORIZON_END, n_samples=500)
        start = time.perf_counter()
        fc = forecast(result, full, first="2015-06-20", last=HORIZON_END, n_samples=500)
        return {"seconds": time.perf_counter() - start, "cells": len(fc), "peak_mb": peak_rss_mb()}
    if mode == "fifty":
        history = full.select_days(None, CUTOFF)
        start = time.perf_counter()
        first = fit(history.select_stores(full.store_ids[:50]), config)
        fresh = time.perf_counter() - start
        start = time.perf_counter()
        fit(
            history.select_stores(full.store_ids[50:100]),
            FitConfig(steps=config.steps, seed=1, likelihood=config.likelihood),
        )
        warm = time.perf_counter() - start
        return {
            "fresh_seconds": fresh,
            "compile_seconds": first.meta["compile_seconds"],
            "warm_seconds": warm,
            "steps": first.meta["steps"],
        }
    raise SystemExit(f"unknown mode {mode}")


def run_child(mode: str, args, env=None) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--data-dir", args.data_dir, "--fit-dir", args.fit_dir]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    if args.likelihood:
        cmd += ["--likelihood", args.likelihood]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{mode}: {result}", flush=True)  # each run as it lands, so a long bench shows progress
    return result


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--child")
    parser.add_argument("--fit-dir", default="")
    parser.add_argument("--likelihood", help="the observation law (FitConfig.likelihood; default: its default)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data_dir, args.steps, args.fit_dir, args.likelihood)))
        return 0
    if not Path(args.data_dir, "store.csv").is_file():
        print(f"no Rossmann data at {args.data_dir}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        args.fit_dir = tmp
        full = [run_child("full", args) for _ in range(args.runs)]
        predict = [run_child("predict", args) for _ in range(args.runs)]
        steps = args.steps
        args.steps = 4 * full[0]["steps"]
        long = run_child("full", args)
        args.steps = steps
        cache = Path(tmp) / "jax_cache"
        fifty_cold = run_child("fifty", args)
        run_child("fifty", args, {"BENCH_COMPILE_CACHE": str(cache)})  # fills the persistent cache
        fifty_cached = run_child("fifty", args, {"BENCH_COMPILE_CACHE": str(cache)})
    gap = abs(median(full, "rmspe") - long["rmspe"]) / long["rmspe"]
    rows = [
        ("full fit, compile included (s)", median(full, "seconds"), "<= 10"),
        ("  of which compile (s)", median(full, "compile_seconds"), ""),
        ("  steps", full[0]["steps"], ""),
        ("  final loss", median(full, "final_loss"), ""),
        ("  holdout RMSPE", median(full, "rmspe"), ""),
        (f"  RMSPE of a {long['steps']}-step run", long["rmspe"], "within 1%"),
        ("  relative gap", gap, "<= 0.01"),
        ("  fit process peak RSS (MB)", median(full, "peak_mb"), "< 3072"),
        ("predict 1115 x 42 x 500 (s)", median(predict, "seconds"), "<= 3"),
        ("  predict process peak RSS (MB)", median(predict, "peak_mb"), "< 2048"),
        ("50 stores, compiled code warm (s)", fifty_cold["warm_seconds"], "<= 3"),
        ("50 stores, fresh process, no cache (s)", fifty_cold["fresh_seconds"], "<= 10"),
        ("50 stores, fresh process, disk cache (s)", fifty_cached["fresh_seconds"], "<= 10"),
    ]
    for name, value, target in rows:
        print(f"{name:<42} {value:>12.4g}  {target}")
    print(
        json.dumps(
            {
                "full": full,
                "long": long,
                "predict": predict,
                "fifty_cold": fifty_cold,
                "fifty_cached": fifty_cached,
                "rmspe_gap": gap,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
