"""The calendar ahead: what is known about days after the data (open, promo, holidays) per store.

A forecast past the last day of data needs the covariates of those days. Rossmann's own `test.csv`
(Store, Date, Open, Promo, StateHoliday, SchoolHoliday; other columns such as Id are kept) gives
them for the weeks after the training data, a request can give a few store-days, and public
holidays can be inferred. A FutureCalendar holds whatever is known, store by store and day by day,
with -1 where nothing is, and where each known cell came from; forecasts take a known value over
the defaults (no promo, no holiday, closed on the store's usual closing days).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bhm_core.data.sources import DEFAULT_MAX_BYTES, read_csv_text
from bhm_core.data.validate import (
    FALSE_STRINGS,
    TRUE_STRINGS,
    as_dates,
    as_integer,
    as_state_holiday,
    require_columns,
    row_error,
)
from bhm_core.errors import DataError

UNKNOWN = -1
MAX_AHEAD_DAYS = 366  # the features (trend, season) are extrapolations; a year ahead is the limit
FIELDS = ("open", "promo", "state_holiday", "school_holiday")
COLUMNS = {"open": "Open", "promo": "Promo", "state_holiday": "StateHoliday", "school_holiday": "SchoolHoliday"}
# Where a forecast day's covariates came from (the `source` column of forecasts).
SOURCES = ("data", "calendar", "inferred", "estimated", "default")


@dataclass(frozen=True, eq=False)
class FutureCalendar:
    store_ids: np.ndarray  # (S,) int64 ascending
    first: np.datetime64  # the date of column 0
    values: dict  # field -> (S, T) int8, UNKNOWN where not known
    source: np.ndarray  # (S, T) int8 index into SOURCES where any field is known, else UNKNOWN
    extra: pd.DataFrame | None = None  # the file's other columns (e.g. Id), by Store and Date

    @property
    def dates(self) -> np.ndarray:
        return self.first + np.arange(self.source.shape[1])

    def lookup(self, store_ids, dates) -> tuple[dict, np.ndarray]:
        """(field -> (stores, days) values, (stores, days) source codes), UNKNOWN outside."""
        ids = np.asarray(store_ids, np.int64)
        row = np.searchsorted(self.store_ids, ids)
        row_ok = (row < len(self.store_ids)) & (self.store_ids[np.minimum(row, len(self.store_ids) - 1)] == ids)
        col = (np.asarray(dates, "datetime64[D]") - self.first).astype(np.int64)
        col_ok = (col >= 0) & (col < self.source.shape[1])
        inside = row_ok[:, None] & col_ok[None, :]
        r, c = np.minimum(row, len(self.store_ids) - 1), np.clip(col, 0, self.source.shape[1] - 1)

        def take(grid):
            return np.where(inside, grid[r][:, c], UNKNOWN).astype(np.int8)

        return {name: take(grid) for name, grid in self.values.items()}, take(self.source)

    def over(self, other: FutureCalendar | None) -> FutureCalendar:
        """This calendar where it knows a cell, `other` elsewhere (request values over a file's)."""
        if other is None:
            return self
        ids = np.union1d(self.store_ids, other.store_ids)
        first = min(self.first, other.first)
        last = max(self.dates[-1], other.dates[-1])
        dates = np.arange(first, last + np.timedelta64(1, "D"))
        mine, mine_source = self.lookup(ids, dates)
        theirs, their_source = other.lookup(ids, dates)
        values = {f: np.where(mine[f] != UNKNOWN, mine[f], theirs[f]) for f in FIELDS}
        source = np.where(mine_source != UNKNOWN, mine_source, their_source).astype(np.int8)
        return FutureCalendar(ids, first, values, source, self.extra if self.extra is not None else other.extra)


def from_frame(frame: pd.DataFrame, source: str = "calendar", extra: pd.DataFrame | None = None) -> FutureCalendar:
    """A calendar from a frame with Store, Date and any of the FIELDS as columns (UNKNOWN allowed)."""
    if frame.empty:
        raise DataError("the calendar has no rows")
    ids = np.unique(frame["Store"].to_numpy(np.int64))
    days = frame["Date"].to_numpy().astype("datetime64[D]")
    first, last = days.min(), days.max()
    shape = (len(ids), int((last - first).astype(np.int64)) + 1)
    rows, cols = np.searchsorted(ids, frame["Store"].to_numpy(np.int64)), (days - first).astype(np.int64)
    values = {}
    for name in FIELDS:
        grid = np.full(shape, UNKNOWN, np.int8)
        if name in frame.columns:
            grid[rows, cols] = frame[name].to_numpy(np.int8)
        values[name] = grid
    known = np.zeros(shape, bool)
    known[rows, cols] = True
    code = np.where(known, SOURCES.index(source), UNKNOWN).astype(np.int8)
    return FutureCalendar(ids, first, values, code, extra)


def _optional_flag(raw: pd.DataFrame, column: str, table: str) -> np.ndarray:
    """0/1 per row, UNKNOWN where blank (Kaggle's test.csv leaves Open blank for a few rows)."""
    text = raw[column].fillna("").astype(str).str.strip().str.lower()
    is_true, is_false, blank = text.isin(TRUE_STRINGS), text.isin(FALSE_STRINGS), text.isin(["", "nan"])
    bad = ~(is_true | is_false | blank).to_numpy()
    if bad.any():
        raise row_error(raw, bad, column, "is not 0/1 (or blank)", table)
    return np.where(is_true, 1, np.where(is_false, 0, UNKNOWN)).astype(np.int8)


def validate_calendar(raw: pd.DataFrame, table: str = "test.csv") -> pd.DataFrame:
    """A calendar file in the Kaggle test.csv layout -> Store, Date and the known FIELDS, checked
    with the training data's rules and messages; other columns (Id) are kept."""
    require_columns(raw, ("Store", "Date"), table)
    out = pd.DataFrame({"Store": as_integer(raw, "Store", table), "Date": as_dates(raw, "Date", table)})
    for name, column in COLUMNS.items():
        if column not in raw.columns:
            continue
        out[name] = (
            as_state_holiday(raw, column, table) if name == "state_holiday" else _optional_flag(raw, column, table)
        )
    key = out["Store"].to_numpy() * 10_000_000 + out["Date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    duplicated = pd.Series(key).duplicated().to_numpy()
    if duplicated.any():
        raise row_error(raw, duplicated, "Store, Date", "repeats an earlier (store, date) pair", table)
    for column in raw.columns:
        if column not in ("Store", "Date", *COLUMNS.values(), "DayOfWeek"):
            out[column] = raw[column].to_numpy()
    return out


def read_calendar(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FutureCalendar:
    path = Path(path)
    frame = validate_calendar(read_csv_text(path, max_bytes), path.name)
    extra_columns = [c for c in frame.columns if c not in ("Store", "Date", *FIELDS)]
    extra = frame[["Store", "Date", *extra_columns]] if extra_columns else None
    return from_frame(frame[["Store", "Date", *(f for f in FIELDS if f in frame.columns)]], "calendar", extra)
