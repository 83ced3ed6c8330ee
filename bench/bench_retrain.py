"""A warm retrain against a cold fit of the same days, on Rossmann.

    .venv/bin/python bench/bench_retrain.py [--data-dir ../shared/data/rossmann] [--champion-end 2015-06-19]
                                            [--holdout 21] [--steps N]

The champion is fitted cold on the data through --champion-end (written to a temporary Kaggle
folder); `python -m bhm_core retrain --compare-cold` then continues it on the new days up to the
holdout (the last --holdout days) and fits the same days cold, and scores both on the holdout.
With the default 21-day holdout the challenger learns 21 new days (2015-06-20 .. 07-10) and is
scored on the 21 after. Prints both fits' seconds and holdout scores, their ratios, the gate's
decision, and a JSON line. Both times leave compiling out (the second fit of a shape in one process
reuses the first one's program). Targets: the warm fit in at most half the cold fit's time, its RMSPE
within 1 % of the cold fit's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
from cli_run import bhm, bhm_answer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rossmann"


def champion_folder(data_dir: Path, last_day: str, folder: Path) -> Path:
    """The data through `last_day` as a Kaggle folder of their own."""
    train_file = next(p for name in ("train.csv", "train.csv.gz") if (p := data_dir / name).is_file())
    train = pd.read_csv(train_file, dtype={"StateHoliday": str}, low_memory=False)
    folder.mkdir()
    train[pd.to_datetime(train["Date"]) <= pd.Timestamp(last_day)].to_csv(folder / "train.csv", index=False)
    (folder / "store.csv").write_bytes((data_dir / "store.csv").read_bytes())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--champion-end", default="2015-06-19")
    parser.add_argument("--holdout", default="21")
    parser.add_argument("--steps", help="the challenger's steps (default: retrain's own)")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        sys.exit(f"{data_dir}: no data folder (this benchmark needs the Rossmann data)")
    with tempfile.TemporaryDirectory() as tmp:
        old = champion_folder(data_dir, args.champion_end, Path(tmp) / "old")
        fits = f"{tmp}/fits"
        champion = bhm("fit", "--data-dir", str(old), "--out", fits)
        print(f"champion {champion['key']}: {champion['n_stores']} stores, {champion['fit_seconds']:.1f} s")
        code, answer = bhm_answer(
            "retrain", "--data-dir", str(data_dir), "--from", champion["key"], "--fits-dir", fits,
            "--holdout", args.holdout, "--compare-cold", *(["--steps", args.steps] if args.steps else []),
            accepted=(0, 3),
        )  # fmt: skip
    warm, cold = answer["challenger"], answer["cold"]
    # Compiling is left out of both: the second fit of a shape in a process reuses the first's program.
    warm_seconds = answer["challenger_fit_seconds"] - answer["challenger_compile_seconds"]
    cold_seconds = answer["cold_fit_seconds"] - answer["cold_compile_seconds"]
    figures = {
        "warm_fit_seconds": warm_seconds,
        "cold_fit_seconds": cold_seconds,
        "time_ratio": warm_seconds / cold_seconds,
        "warm": warm,
        "cold": cold,
        "champion": answer["champion"],
        "rmspe_ratio": warm["rmspe"] / cold["rmspe"],
        "holdout": answer["holdout"],
        "decision": answer["decision"],
        "exit_code": code,
        "retrain_seconds": answer["seconds"],
    }
    for name, s in (("champion", answer["champion"]), ("warm", warm), ("cold", cold)):
        print(
            f"{name:<9} RMSPE {s['rmspe']:.4f}  50 % {100 * s['coverage_50']:.1f} %  "
            f"90 % {100 * s['coverage_90']:.1f} %  CRPS {s['crps']:.1f}"
        )
    print(
        f"warm fit {figures['warm_fit_seconds']:.1f} s vs cold {figures['cold_fit_seconds']:.1f} s: ratio "
        f"{figures['time_ratio']:.2f} (target at most 0.5); RMSPE ratio {figures['rmspe_ratio']:.4f} (target within "
        f"1 %); holdout {answer['holdout']['first']} .. {answer['holdout']['last']}; gate: {answer['decision']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
