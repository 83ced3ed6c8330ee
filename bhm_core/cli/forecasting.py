"""The `forecast` command's work once its options are checked: the tables, then the files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from bhm_core.data.future import read_calendar
from bhm_core.errors import DataError
from bhm_core.forecast import export
from bhm_core.forecast.files import TableFile, companion, format_of
from bhm_core.forecast.sampling import Scenario


def write_forecast(opened, args, progress) -> dict:
    """Rows, the daily total and (--draws) the draws of the requested stores and days, written a
    chunk of stores at a time."""
    import time

    started = time.perf_counter()
    result, cube = opened.result, opened.cube
    stores = result.store_ids.tolist() if args.all else list(dict.fromkeys(args.stores))
    unknown = sorted(set(stores) - set(result.store_ids.tolist()))
    if unknown:
        raise DataError(
            f"store(s) {unknown[:10]} are not in fit {opened.key} ({len(result.store_ids)} stores, "
            f"{result.store_ids[0]}..{result.store_ids[-1]})"
        )
    first, last = export.window(cube, args.start, args.end, args.horizon)
    request = export.Request(tuple(stores), first, last, export.check_levels(args.levels), args.samples, args.seed)
    fmt = format_of(args.out, args.format)
    rows = TableFile(args.out, fmt)
    draws = TableFile(companion(args.out, "draws", "parquet"), "parquet") if args.draws else None
    total, sources, done = export.Total(request), Counter(), 0
    dates = first + np.arange(request.n_days)
    try:
        for part in export.parts(result, cube, request, Scenario(calendar=opened.calendar)):
            rows.write(part.rows)
            total.add(part)
            sources.update(part.rows["source"].tolist())
            if draws is not None:
                draws.write(export.draws_frame(part.draws, dates))
            done += len(part.draws.ids)
            progress(done, len(stores))
    except BaseException:
        rows.discard()
        if draws is not None:
            draws.discard()
        raise
    document = {"fit": opened.key, "levels": list(request.levels), "units": "sales per store and day"}
    totals = total.frame()
    if fmt == "json":
        document["total"] = _json_records(totals)
        n_rows, total_out = rows.close(document), None
    else:
        n_rows = rows.close()
        total_file = TableFile(companion(args.out, "total", fmt), fmt)
        total_file.write(totals)
        total_file.close()
        total_out = str(total_file.path)
    return {
        "n_rows": n_rows,
        "out": str(Path(args.out)),
        "total_out": total_out,
        "forecast_seconds": round(time.perf_counter() - started, 3),
        "draws_out": str(draws.path) if draws is not None and draws.close() >= 0 else None,
        "calendar": "given" if opened.calendar is not None else "none",
        "sources": dict(sources),
    }


def _json_records(frame: pd.DataFrame) -> list:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    return frame.to_dict(orient="records")


def kaggle_submission(opened, args) -> dict:
    """Id,Sales for every row of a Kaggle test.csv: the RMSPE-optimal point, 0 on closed days."""
    calendar = read_calendar(args.kaggle_submission)
    if calendar.extra is None or "Id" not in calendar.extra:
        raise DataError(f"{Path(args.kaggle_submission).name}: no Id column, so no submission can be written")
    result, cube = opened.result, opened.cube
    missing = sorted(set(calendar.store_ids.tolist()) - set(result.store_ids.tolist()))
    if missing:
        raise DataError(
            f"the test file has {len(missing)} store(s) the fit does not, e.g. {missing[:10]}; fit them first"
        )
    request = export.Request(
        tuple(calendar.store_ids.tolist()), calendar.first, calendar.dates[-1], (50,), args.samples, args.seed
    )
    plan = calendar.over(opened.calendar)
    rows, _, _ = export.tables(result, cube, request, Scenario(calendar=plan))
    wanted = calendar.extra.assign(Date=pd.to_datetime(calendar.extra["Date"]))
    merged = wanted.merge(rows, left_on=["Store", "Date"], right_on=["store", "date"], how="left")
    sales = np.where(merged["open"].fillna(False), merged["point"].fillna(0.0), 0.0)
    submission = pd.DataFrame({"Id": pd.to_numeric(merged["Id"]).astype(np.int64), "Sales": np.round(sales, 2)})
    out = TableFile(args.out, "csv")
    out.write(submission.sort_values("Id", ignore_index=True))
    return {"n_rows": out.close(), "out": str(Path(args.out)), "calendar": "kaggle test file"}
