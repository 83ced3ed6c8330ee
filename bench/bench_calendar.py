"""The calendar ahead on Rossmann: inferred regions, inferred holidays against test.csv, the
forecast over the test period, and a store table with rows missing.

    .venv/bin/python bench/bench_calendar.py [--data-dir ../shared/data/rossmann] [--skip-forecast]

Prints
- the share of stores whose inferred German state matches every recorded state-holiday date (and
  how many stores the dates leave between several states);
- the inferred public holidays of 2015-08-01 .. 09-17 against test.csv's StateHoliday column:
  agreement per store-day, on the days either calls a holiday, and whether a store opens on them;
- the forecast of every test.csv store-day (a Kaggle submission) from a fit through 2015-07-31,
  timed: the fit, and the forecast command (reopen, calendar, draws, file);
- that the data load with ten stores' rows removed from store.csv, those stores kept as "unknown";
and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rossmann"

from cli_run import bhm  # noqa: E402

from bhm_core.data import public_holidays as ph  # noqa: E402
from bhm_core.data.future import read_calendar  # noqa: E402
from bhm_core.data.sources import KaggleDirSource, load_dataset  # noqa: E402


def regions(cube) -> tuple[list, dict]:
    matches = ph.infer_regions(cube, "DE")
    recorded = [m for m in matches if m.recorded]
    figures = {
        "stores": len(matches),
        "exact_share": float(np.mean([m.exact for m in recorded])),
        "tied_stores": sum(bool(m.ties) for m in recorded),
        "regions": pd.Series([m.region for m in recorded]).value_counts().to_dict(),
    }
    return matches, figures


def against_test(cube, matches, test_file: Path) -> dict:
    given = read_calendar(test_file)
    inferred = ph.calendar_ahead(cube, matches, given.dates[0], given.dates[-1], "DE")
    stores = np.intersect1d(given.store_ids, cube.store_ids)
    truth, known = given.lookup(stores, given.dates)
    guess, _ = inferred.lookup(stores, given.dates)
    cells = known != -1
    said, ours = truth["state_holiday"][cells] > 0, guess["state_holiday"][cells] > 0
    either = said | ours
    both = said & ours & (truth["open"][cells] != -1) & (guess["open"][cells] != -1)
    return {
        "closed_on_holiday_agreement": float((truth["open"][cells][both] == guess["open"][cells][both]).mean())
        if both.any()
        else None,
        "store_days": int(cells.sum()),
        "agreement": float((said == ours).mean()),
        "holiday_store_days_in_test": int(said.sum()),
        "holiday_store_days_inferred": int(ours.sum()),
        "agreement_on_holidays": float((said == ours)[either].mean()) if either.any() else None,
    }


def submission(data_dir: Path, test_file: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        fitted = bhm("fit", "--data-dir", str(data_dir), "--out", f"{tmp}/fits")
        began = time.perf_counter()
        out = bhm(
            "forecast", "--fit", fitted["key"], "--fits-dir", f"{tmp}/fits",
            "--kaggle-submission", str(test_file), "--out", f"{tmp}/submission.csv",
        )  # fmt: skip
        seconds = time.perf_counter() - began
        rows = len(pd.read_csv(f"{tmp}/submission.csv"))
    return {"fit_seconds": fitted["fit_seconds"], "forecast_command_seconds": seconds, "rows": rows, **out}


def missing_store_rows(data_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stores = pd.read_csv(data_dir / "store.csv")
        removed = stores["Store"].iloc[::111][:10].tolist()
        stores[~stores["Store"].isin(removed)].to_csv(folder / "store.csv", index=False)
        train = next(p for name in ("train.csv", "train.csv.gz") if (p := data_dir / name).is_file())
        (folder / train.name).symlink_to(train)
        loaded = load_dataset(KaggleDirSource(str(folder)))
        kept = loaded.stores.set_index("Store").loc[removed, "StoreType"]
    return {"removed": removed, "kept_as_unknown": bool((kept == "unknown").all()), "notes": list(loaded.notes)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--skip-forecast", action="store_true", help="leave out the fit and the submission")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    test_file = next((p for name in ("test.csv", "test.csv.gz") if (p := data_dir / name).is_file()), None)
    if test_file is None:
        sys.exit(f"{data_dir}: no test.csv(.gz) (this benchmark needs the Rossmann data)")
    cube = load_dataset(KaggleDirSource(str(data_dir))).cube()
    began = time.perf_counter()
    matches, figures = regions(cube)
    figures["infer_seconds"] = time.perf_counter() - began
    print(
        f"regions: {figures['exact_share']:.1%} of {figures['stores']} stores match every recorded holiday date "
        f"of their inferred state; {figures['tied_stores']} fit several states equally "
        f"({figures['infer_seconds']:.2f} s)"
    )
    test = against_test(cube, matches, test_file)
    print(
        f"inferred vs test.csv StateHoliday: {test['agreement']:.2%} of {test['store_days']:,} store-days agree; "
        f"holidays {test['holiday_store_days_inferred']} inferred vs {test['holiday_store_days_in_test']} in "
        f"test.csv, {test['agreement_on_holidays']:.1%} agreement on the days either names; open or closed on "
        f"those holidays as test.csv says: {test['closed_on_holiday_agreement']:.1%}"
    )
    missing = missing_store_rows(data_dir)
    print(f"store.csv without {len(missing['removed'])} stores: kept as unknown: {missing['kept_as_unknown']}")
    figures |= {"test_calendar": test, "missing_store_rows": missing}
    if not args.skip_forecast:
        made = submission(data_dir, test_file)
        print(
            f"submission of {made['rows']:,} test rows: fit {made['fit_seconds']:.1f} s, forecast command "
            f"{made['forecast_command_seconds']:.1f} s"
        )
        figures["submission"] = made
    print(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
