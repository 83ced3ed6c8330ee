"""Validation of raw tables into the canonical Kaggle Rossmann layout.

Every source (demo, Kaggle folder, own CSV) ends here, so every source gets the same checks and the
same messages: the column, how many rows, and one example row as it appears in the file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS
from bhm_core.errors import DataError

TRAIN_REQUIRED = ("Store", "Date", "Sales")
TRAIN_OPTIONAL_FLAGS = ("Open", "Promo", "SchoolHoliday")
STORE_COLUMNS = ("Store", "StoreType", "Assortment", "Promo2")
TRUE_STRINGS = {"1", "1.0", "true", "yes"}
FALSE_STRINGS = {"0", "0.0", "false", "no"}


def row_error(raw: pd.DataFrame, bad: np.ndarray, column: str, what: str, table: str) -> DataError:
    rows = np.flatnonzero(bad)
    first = rows[0]
    # The offending column(s) first: on Kaggle's layout StateHoliday is the 8th column and would
    # otherwise fall outside the example.
    named = [c for c in column.split(", ") if c in raw.columns]
    shown = {c: raw.iloc[first][c] for c in [*named, *[c for c in raw.columns[:6] if c not in named]]}
    # +2: the header is line 1 and pandas counts from 0. A file's rows keep their read_csv position
    # as index even after filtering (CsvSource's per-store rows), so prefer it to the position.
    if pd.api.types.is_integer_dtype(raw.index):
        first = raw.index[first]
    return DataError(
        f"{table}: column '{column}' {what} in {len(rows):,} row(s); "
        f"e.g. line {first + 2}: {', '.join(f'{k}={v}' for k, v in shown.items())}"
    )


def as_numbers(text: pd.Series) -> pd.Series:
    """pd.to_numeric(text, errors="coerce") as float64, fast when every cell parses.

    pandas >= 3 reads text into Arrow strings, and to_numeric converts them through Python objects
    (0.4 s per Rossmann column, most of the load). Arrow's own cast is ~30x faster but fails on the
    first bad cell, so any failure falls back to to_numeric, whose NaNs drive the messages.
    """
    try:
        parsed = pc.cast(pa.array(text.array), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        return pd.to_numeric(text, errors="coerce").astype(np.float64)
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index)


def require_columns(raw: pd.DataFrame, required, table: str) -> None:
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise DataError(f"{table}: missing required column(s) {missing}; found {list(raw.columns)}")
    if raw.empty:
        raise DataError(f"{table}: the file has a header but no data rows")


def as_integer(raw, column, table) -> np.ndarray:
    text = raw[column]
    values = as_numbers(text)
    bad = (values.isna() | ~np.isfinite(values) | (values != np.round(values))).to_numpy()
    if bad.any():
        raise row_error(raw, bad, column, "is not a whole number", table)
    return values.to_numpy().astype(np.int64)


def as_flag(raw, column, table) -> np.ndarray:
    text = raw[column].astype(str).str.strip().str.lower()
    is_true = text.isin(TRUE_STRINGS).to_numpy()
    bad = ~(is_true | text.isin(FALSE_STRINGS).to_numpy())
    if bad.any():
        raise row_error(raw, bad, column, "is not 0/1", table)
    return is_true.astype(np.int8)


def as_dates(raw, column, table) -> np.ndarray:
    dates = pd.to_datetime(raw[column], format="ISO8601", errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        raise row_error(raw, bad, column, "is not a date (expected YYYY-MM-DD)", table)
    return dates.dt.normalize().to_numpy().astype("datetime64[D]")


def as_sales(raw, column, table) -> np.ndarray:
    text = raw[column]
    blank = text.isna().to_numpy() | (text.astype(str).str.strip() == "").to_numpy()
    values = as_numbers(text).to_numpy()
    bad = np.isnan(values) & ~blank
    if bad.any():
        raise row_error(raw, bad, column, "is not a number", table)
    bad = values < 0
    if bad.any():
        raise row_error(raw, bad, column, "is negative (sales must be >= 0)", table)
    return values


def as_state_holiday(raw, column, table) -> np.ndarray:
    # The real file mixes the string '0' and the integer 0, which pandas may read as "0" or "0.0".
    # fillna first: pandas >= 3 keeps NaN through astype(str), so a blank cell would not become "".
    text = raw[column].fillna("").astype(str).str.strip().str.lower().replace({"0.0": "0", "": "0", "nan": "0"})
    # get_indexer gives -1 for an unknown level; pd.Categorical with unknown values is deprecated.
    codes = pd.Index(STATE_HOLIDAY_LEVELS).get_indexer(text)
    bad = codes < 0
    if bad.any():
        raise row_error(raw, bad, column, f"is not one of {list(STATE_HOLIDAY_LEVELS)}", table)
    return codes.astype(np.int8)


def validate_train(raw: pd.DataFrame, table: str = "train.csv") -> pd.DataFrame:
    """Raw text table -> canonical typed frame; raises DataError on the first problem found."""
    require_columns(raw, TRAIN_REQUIRED, table)
    out = pd.DataFrame(
        {
            "Store": as_integer(raw, "Store", table),
            "Date": as_dates(raw, "Date", table),
            "Sales": as_sales(raw, "Sales", table),
        }
    )
    for column in TRAIN_OPTIONAL_FLAGS:
        out[column] = as_flag(raw, column, table) if column in raw.columns else np.int8(1 if column == "Open" else 0)
    out["StateHoliday"] = as_state_holiday(raw, "StateHoliday", table) if "StateHoliday" in raw.columns else np.int8(0)
    if "Customers" in raw.columns:
        out["Customers"] = as_numbers(raw["Customers"]).to_numpy()
    days = out["Date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    key = out["Store"].to_numpy() * 10_000_000 + days
    duplicated = pd.Series(key).duplicated(keep="first").to_numpy()
    if duplicated.any():
        raise row_error(raw, duplicated, "Store, Date", "repeats an earlier (store, date) pair", table)
    return out


UNKNOWN_ATTRIBUTE = "unknown"  # the level of a store attribute its table leaves blank or out


def validate_stores(
    raw: pd.DataFrame, store_ids: np.ndarray, table: str = "store.csv"
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """(store attributes for exactly the stores in the sales table, notes on what was assumed).

    Missing optional columns get defaults. A store the table lacks, or whose StoreType or
    Assortment is blank, is kept with those attributes "unknown" (a variant level of its own, which
    the hierarchy shrinks to the chain) and named in a note: one row missing must not stop a load.
    """
    require_columns(raw, ("Store",), table)
    out = pd.DataFrame({"Store": as_integer(raw, "Store", table)})
    duplicated = out["Store"].duplicated().to_numpy()
    if duplicated.any():
        raise row_error(raw, duplicated, "Store", "repeats a store id", table)
    notes = []
    for column in ("StoreType", "Assortment"):
        values = raw[column].fillna("").astype(str).str.strip().str.lower() if column in raw.columns else "a"
        # By position: raw may carry a filtered index (CsvSource's per-store rows), and an
        # index-aligned assignment would leave NaN in every row past the first.
        out[column] = values.to_numpy() if isinstance(values, pd.Series) else values
        blank = out[column].isin(["", "nan"]).to_numpy() & out["Store"].isin(store_ids).to_numpy()
        if blank.any():
            out.loc[blank, column] = UNKNOWN_ATTRIBUTE
            notes.append(
                f"{table}: {column} is blank for {blank.sum():,} store(s) ({_some(out['Store'][blank])}); "
                f"they get the level '{UNKNOWN_ATTRIBUTE}'"
            )
    out["Promo2"] = as_flag(raw, "Promo2", table) if "Promo2" in raw.columns else np.int8(0)
    if "CompetitionDistance" in raw.columns:
        out["CompetitionDistance"] = as_numbers(raw["CompetitionDistance"]).to_numpy()
    for column in (
        "PromoInterval",
        "Promo2SinceWeek",
        "Promo2SinceYear",
        "CompetitionOpenSinceMonth",
        "CompetitionOpenSinceYear",
    ):
        if column in raw.columns:
            out[column] = raw[column].to_numpy()
    missing = np.setdiff1d(store_ids, out["Store"].to_numpy())
    if missing.size:
        notes.append(
            f"{table} has no row for {missing.size:,} store(s) of the sales table ({_some(missing)}); they are "
            f"kept with StoreType and Assortment '{UNKNOWN_ATTRIBUTE}' and no Promo2"
        )
        filler = default_stores(missing).assign(StoreType=UNKNOWN_ATTRIBUTE, Assortment=UNKNOWN_ATTRIBUTE)
        out = pd.concat([out, filler], ignore_index=True)
    kept = out[out["Store"].isin(store_ids)].sort_values("Store").reset_index(drop=True)
    return kept, tuple(notes)


def _some(ids, shown: int = 5) -> str:
    ids = [int(i) for i in ids]
    head = ", ".join(str(i) for i in ids[:shown])
    return f"stores {head}" + (f" and {len(ids) - shown:,} more" if len(ids) > shown else "")


def default_stores(store_ids: np.ndarray) -> pd.DataFrame:
    """Store table for data that comes without one: one variant, no Promo2."""
    return pd.DataFrame({"Store": np.sort(store_ids), "StoreType": "a", "Assortment": "a", "Promo2": np.int8(0)})
