"""Small tidy views of a cube for people to read: one row per store, a coarse store x day status
grid, sales histories. Pure (numpy, pandas); the dashboard caches them and only draws them.

Only observed cells (open, sales > 0) are sales; closed days and days without a row are never
shown as zeros.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bhm_core.data.cube import CLOSED, MISSING, OPEN, SalesCube

# Display codes of the status grid (0..3), in legend order.
STATUS_LABELS = ("Observed", "Open, no sales", "Closed", "No row")
GAP_DAYS = 14  # a longer run without observations breaks a history line instead of bridging it


def store_table(cube: SalesCube) -> pd.DataFrame:
    """One row per store: attributes plus mean sales over observed days and day counts."""
    observed = cube.observed
    n_obs = observed.sum(axis=1)
    total = cube.sales.sum(axis=1, dtype=np.float64)
    mean = np.divide(total, n_obs, out=np.full(len(n_obs), np.nan), where=n_obs > 0)
    table = cube.stores.loc[:, ["Store", "StoreType", "Assortment", "Promo2"]].copy()
    table["Promo2"] = table["Promo2"].astype(bool)
    table["MeanSales"] = mean.round(0)
    table["ObservedDays"] = n_obs
    table["ClosedDays"] = (cube.status == CLOSED).sum(axis=1)
    table["NoRowDays"] = (cube.status == MISSING).sum(axis=1)
    return table


def display_codes(cube: SalesCube) -> np.ndarray:
    """Per store-day, the index of its STATUS_LABELS entry."""
    codes = np.full(cube.status.shape, 3, np.int8)  # no row (MISSING) unless overwritten
    codes[cube.status == CLOSED] = 2
    codes[(cube.status == OPEN) & ~cube.observed] = 1
    codes[cube.observed] = 0
    return codes


def block_mode(codes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Most frequent display code in each rows x cols block (padding never counts)."""
    s, t = codes.shape
    pad = np.full((math.ceil(s / rows) * rows, math.ceil(t / cols) * cols), -1, np.int8)
    pad[:s, :t] = codes
    blocks = pad.reshape(pad.shape[0] // rows, rows, pad.shape[1] // cols, cols)
    counts = np.stack([(blocks == k).sum(axis=(1, 3)) for k in range(len(STATUS_LABELS))])
    return counts.argmax(axis=0).astype(np.int8)


def status_grid(cube: SalesCube, max_days: int = 200, max_stores: int = 1200) -> dict:
    """Store x day status, coarsened to at most max_stores x max_days cells for drawing.

    Days are grouped into whole weeks (or multiples) once there are more than max_days of them,
    so a cell never mixes weekdays unevenly. Each cell shows the status most days of its block
    have.
    """
    codes = display_codes(cube)
    days = 1 if cube.n_days <= max_days else 7 * math.ceil(cube.n_days / max_days / 7)
    stores = max(1, math.ceil(cube.n_stores / max_stores))
    grid = block_mode(codes, stores, days)
    ids = cube.store_ids
    starts = ids[::stores]
    ends = ids[np.minimum(np.arange(len(starts)) * stores + stores - 1, len(ids) - 1)]
    labels = [str(a) if a == b else f"{a}–{b}" for a, b in zip(starts, ends)]
    return {"z": grid, "x": cube.dates[::days], "y": labels, "days_per_cell": days, "stores_per_cell": stores}


def history_frame(cube: SalesCube, store_ids: list, weekly: bool) -> pd.DataFrame:
    """Tidy Store, Date, Sales over observed days (closed and missing days dropped).

    Weekly: mean sales per observed day of each week (Monday start), so the unit stays per day.
    A NaN row after every gap of more than GAP_DAYS makes a chart break the line there.
    """
    rows = cube.store_rows(store_ids)
    observed = cube.observed[rows]
    r, c = np.nonzero(observed)
    frame = pd.DataFrame(
        {
            "Store": cube.store_ids[rows][r],
            "Date": cube.dates[c].astype("datetime64[ns]"),
            "Sales": cube.sales[rows][r, c].astype(np.float64),
        }
    )
    if weekly and not frame.empty:
        frame["Date"] = frame["Date"].dt.to_period("W-SUN").dt.start_time
        frame = frame.groupby(["Store", "Date"], as_index=False, sort=True)["Sales"].mean()
    gap = frame.groupby("Store")["Date"].diff() > pd.Timedelta(days=GAP_DAYS)
    breaks = frame.loc[gap, ["Store", "Date"]].assign(Date=lambda f: f["Date"] - pd.Timedelta(days=1), Sales=np.nan)
    frame = pd.concat([frame, breaks]).sort_values(["Store", "Date"], kind="stable")
    return frame.reset_index(drop=True)


def observed_sales(cube: SalesCube, stores, first, last) -> pd.DataFrame:
    """Observed sales (store, date, y) of these stores between first and last (inclusive), in the
    columns of a forecast frame, so that a chart can draw them next to forecasts."""
    rows = cube.store_rows(stores)
    keep = (cube.dates >= np.datetime64(first, "D")) & (cube.dates <= np.datetime64(last, "D"))
    cols = np.flatnonzero(keep)
    observed = cube.observed[np.ix_(rows, cols)]
    r, c = np.nonzero(observed)
    return pd.DataFrame(
        {
            "store": np.asarray(stores)[r],
            "date": pd.to_datetime(cube.dates[cols[c]]),
            "y": cube.sales[rows[r], cols[c]].astype(float),
        }
    )


def observed_sale(cube: SalesCube, store: int, day) -> float | None:
    """A store's sales on one day, or None where the day is not an observation (closed, no row,
    outside the data)."""
    col = int((np.datetime64(day, "D") - cube.dates[0]).astype(int))
    row = cube.store_rows([store])[0]
    if 0 <= col < cube.n_days and cube.observed[row, col]:
        return float(cube.sales[row, col])
    return None
