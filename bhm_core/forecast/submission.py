"""A Kaggle submission from a forecast: `Id,Sales` for the rows of a calendar read from Kaggle's
test.csv (FutureCalendar.extra keeps its Id column), with the point that minimises the expected
RMSPE (Kaggle's metric) and 0 on the days the calendar says a store is closed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.data.future import FutureCalendar
from bhm_core.errors import DataError
from bhm_core.forecast.export import Request, parts
from bhm_core.forecast.sampling import Scenario


def has_ids(calendar: FutureCalendar | None) -> bool:
    return calendar is not None and calendar.extra is not None and "Id" in calendar.extra.columns


def submission(result, cube, calendar: FutureCalendar, *, n_samples: int = 500, seed: int = 1) -> tuple:
    """(the Id,Sales frame for the calendar's rows of the fitted stores, the Ids left out because
    their store is not in the fit)."""
    if not has_ids(calendar):
        raise DataError("the calendar has no Id column: a Kaggle submission needs the Ids of test.csv")
    rows = calendar.extra[["Store", "Date", "Id"]].copy()
    numeric = pd.to_numeric(rows["Id"], errors="coerce")
    if numeric.notna().all():  # the file's Ids are text as read: whole numbers sort as numbers
        rows["Id"] = numeric.astype(np.int64)
    rows["Date"] = pd.to_datetime(rows["Date"])
    fitted = np.isin(rows["Store"].to_numpy(np.int64), result.store_ids)
    left_out = rows.loc[~fitted, "Id"].tolist()
    rows = rows[fitted]
    if rows.empty:
        raise DataError("none of the calendar's stores is in this fit: fit them to make a submission")
    first, last = rows["Date"].min().to_datetime64(), rows["Date"].max().to_datetime64()
    request = Request(
        tuple(sorted(set(rows["Store"].astype(int)))),
        np.datetime64(first, "D"),
        np.datetime64(last, "D"),
        (90,),
        n_samples,
        seed,
    )
    forecast = pd.concat([p.rows for p in parts(result, cube, request, Scenario(calendar=calendar))], ignore_index=True)
    forecast["date"] = pd.to_datetime(forecast["date"])
    merged = rows.merge(forecast, left_on=["Store", "Date"], right_on=["store", "date"], how="left")
    sales = np.where(merged["open"].fillna(False).astype(bool), merged["point"].fillna(0.0), 0.0)
    out = pd.DataFrame({"Id": merged["Id"].to_numpy(), "Sales": np.round(sales, 2)}).sort_values(
        "Id", ignore_index=True
    )
    return out, left_out
