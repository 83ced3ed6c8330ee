"""Anomalous actuals: scored store-days whose sales no forecaster could have meant.

One store-day can decide an RMSPE: on Rossmann, store 652 sold 46 on 2014-11-22 (8 customers, a
median open day of 7,379), a percentage error near 160 for any forecast of its usual level, and at
the cutoff 2014-11-15 the RMSPE of every method is 0.55 with it and about 0.13 without. Such a day
is most likely a data fault or a store open for an hour; it says nothing about which method
forecasts better.

A scored cell (sales observed and positive) is flagged when both hold:

- its sales are far below every method's predictive range: below ``margin`` times the lowest, over
  the methods, of the lower bound of the 90 % interval (the point where a method has no interval);
- its sales are far below the store's usual level: below ``share`` of the store's median sales over
  its observed training days.

Nothing is dropped silently: the summary lists the flagged cells with each method's share of its
sum of squared percentage errors there, and gives every method's RMSPE with and without them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.data.cube import SalesCube
from bhm_core.evaluation.metrics import interval_columns

SHARE_OF_MEDIAN = 0.10  # sales below this share of the store's median open-day sales
MARGIN = 0.5  # and below this share of the lowest bound of every method's 90 % interval
LEVEL = 90
CELL_COLUMNS = ("store", "date", "y", "store_median", "lowest_bound")


def store_medians(train: SalesCube) -> pd.Series:
    """Each store's median sales over its observed training days (NaN for a store with none)."""
    sales = np.where(train.observed, train.sales, np.nan).astype(np.float64)
    with np.errstate(all="ignore"):
        values = np.full(train.n_stores, np.nan)
        has = train.observed.any(1)
        values[has] = np.nanmedian(sales[has], axis=1)
    return pd.Series(values, index=pd.Index(train.store_ids, name="store"), name="store_median")


def _rmspe_point(frame: pd.DataFrame) -> np.ndarray:
    point = frame["point"].to_numpy(np.float64)
    if "point_rmspe" in frame:
        special = frame["point_rmspe"].to_numpy(np.float64)
        point = np.where(np.isnan(special), point, special)
    return point


def _scored(forecasts: pd.DataFrame) -> pd.DataFrame:
    return forecasts[forecasts["y"].notna() & (forecasts["y"] > 0)]


def anomalous_actuals(
    forecasts: pd.DataFrame, medians: pd.Series, *, share: float = SHARE_OF_MEDIAN, margin: float = MARGIN
) -> pd.DataFrame:
    """The flagged cells (CELL_COLUMNS, by store and date): sales below `margin` x the lowest bound
    over the methods and below `share` x the store's median (module docstring)."""
    scored = _scored(forecasts)
    lo = interval_columns(LEVEL)[0]
    bound = scored[lo].to_numpy(np.float64) if lo in scored else np.full(len(scored), np.nan)
    bound = np.where(np.isnan(bound), _rmspe_point(scored), bound)
    cells = (
        scored.assign(_bound=bound)
        .groupby(["store", "date"], sort=True)
        .agg(y=("y", "first"), lowest_bound=("_bound", "min"))
    )
    cells = cells.reset_index()
    cells["store_median"] = cells["store"].map(medians).to_numpy(np.float64)
    flagged = (cells["y"] < margin * cells["lowest_bound"]) & (cells["y"] < share * cells["store_median"])
    return cells.loc[flagged, list(CELL_COLUMNS)].reset_index(drop=True)


def _squared_pct(scored: pd.DataFrame) -> pd.Series:
    y = scored["y"].to_numpy(np.float64)
    return pd.Series(((_rmspe_point(scored) - y) / y) ** 2, index=scored.index)


def anomaly_summary(
    forecasts: pd.DataFrame, medians: pd.Series, *, share: float = SHARE_OF_MEDIAN, margin: float = MARGIN
) -> dict:
    """The summary's "anomalies": the rule, the flagged cells (each with every method's share of
    that method's sum of squared percentage errors), and each method's RMSPE with and without them."""
    cells = anomalous_actuals(forecasts, medians, share=share, margin=margin)
    scored = _scored(forecasts)
    scored = scored[np.isfinite(_rmspe_point(scored))]
    sq = _squared_pct(scored)
    key = pd.MultiIndex.from_frame(scored[["store", "date"]])
    flagged = (
        key.isin(pd.MultiIndex.from_frame(cells[["store", "date"]])) if len(cells) else np.zeros(len(scored), bool)
    )
    methods = list(dict.fromkeys(scored["method"]))
    by_method = scored["method"].to_numpy()
    totals = {m: float(sq[by_method == m].sum()) for m in methods}
    rows = []
    for cell in cells.itertuples(index=False):
        here = (scored["store"].to_numpy() == cell.store) & (scored["date"].to_numpy() == np.datetime64(cell.date))
        rows.append(
            {
                "store": int(cell.store),
                "date": str(pd.Timestamp(cell.date).date()),
                "y": float(cell.y),
                "store_median": float(cell.store_median),
                "lowest_bound": float(cell.lowest_bound),
                "share_of_squared_error": {
                    m: float(sq[here & (by_method == m)].sum() / totals[m]) if totals[m] > 0 else 0.0
                    for m in methods
                    if (here & (by_method == m)).any()
                },
            }
        )

    def rmspe(mask):
        return {
            m: float(np.sqrt(sq[mask & (by_method == m)].mean())) for m in methods if (mask & (by_method == m)).any()
        }

    everything = np.ones(len(scored), bool)
    return {
        "rule": f"sales < {margin:g} x the lowest {LEVEL}% lower bound over the methods and < {share:g} x the "
        "store's median training sales",
        "cells": rows,
        "rmspe": rmspe(everything),
        "rmspe_without": rmspe(~flagged),
    }
