"""Forecast helpers the library does not have (yet): the calendar of a forecast window and the
days a store will most likely be closed after the data end. Pure, no Streamlit.

The library forecasts every day after the data as an open day. A store closed on Sundays for
years would then get a Sunday forecast drawn from a weekday effect it never showed (the prior);
here such days are marked as expected closed and forecast as 0, like recorded closed days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.cube import CLOSED, MISSING, SalesCube
from bhm_core.engine import FitResult
from bhm_core.features import weekday_of
from bhm_core.predict import LEVELS, Scenario, sample_forecast, summarise

CLOSED_WEEKS = 8        # recent weeks that decide a store's usual closing days
CLOSED_SHARE = 0.75     # closed on at least this share of those weekdays -> expected closed


def usual_closing_days(cube: SalesCube, rows: np.ndarray) -> np.ndarray:
    """(stores, 7) bool: the weekdays each store was closed on in most of its last weeks."""
    status = cube.status[rows]
    weekday = weekday_of(cube.dates)
    out = np.zeros((len(rows), 7), bool)
    for day in range(7):
        cols = np.flatnonzero(weekday == day)
        recent = status[:, cols]
        for i in range(len(rows)):
            known = recent[i][recent[i] != MISSING][-CLOSED_WEEKS:]
            out[i, day] = known.size > 0 and np.mean(known == CLOSED) >= CLOSED_SHARE
    return out


def forecast_calendar(cube: SalesCube, store_ids, dates, promo_future: bool) -> pd.DataFrame:
    """Per store-day: promo, state holiday, and whether the store is closed (recorded) or
    expected closed (after the data, on its usual closing weekdays)."""
    dates = np.asarray(dates).astype("datetime64[D]")
    rows = cube.store_rows(store_ids)
    col = (dates - cube.dates[0]).astype(np.int64)
    inside = (col >= 0) & (col < cube.n_days)
    safe = np.clip(col, 0, cube.n_days - 1)
    cov = cube.covariates
    weekday = weekday_of(dates)
    future_promo = (weekday < 5) & bool(promo_future)
    promo = np.where(inside[None, :], cov.promo[rows][:, safe] > 0, future_promo[None, :])
    holiday = np.where(inside[None, :], cov.state_holiday[rows][:, safe] > 0, False)
    usual = usual_closing_days(cube, rows)[:, weekday]
    expected = ~inside[None, :] & (col[None, :] >= cube.n_days) & usual
    return pd.DataFrame({"store": np.repeat(np.asarray(store_ids, np.int64), len(dates)),
                         "date": np.tile(dates, len(rows)).astype("datetime64[ns]"),
                         "promo": promo.ravel(), "holiday": holiday.ravel(),
                         "expected_closed": expected.ravel()})


def apply_closures(frame: pd.DataFrame) -> pd.DataFrame:
    """Expected-closed days become closed days: open False and a forecast of 0."""
    frame = frame.copy()
    shut = frame["expected_closed"].to_numpy(bool)
    value_columns = ["point", "median"] + [c for c in frame.columns if c[:3] in ("lo_", "hi_")]
    frame.loc[shut, value_columns] = 0.0
    frame.loc[shut, "open"] = False
    return frame


def total_forecast(result: FitResult, cube: SalesCube, first, last, scenario: Scenario, *,
                   n_samples: int, seed: int) -> pd.DataFrame:
    """Daily sum over the fit's stores, interval from summed samples, closures (recorded and
    expected) as 0. Like bhm_core.predict.forecast_total plus the expected closures."""
    dates = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    total = np.zeros((n_samples, len(dates)))
    actual = np.zeros(len(dates))
    col = (dates - cube.dates[0]).astype(np.int64)
    inside = (col >= 0) & (col < cube.n_days)
    safe = np.clip(col, 0, cube.n_days - 1)
    weekday = weekday_of(dates)
    for ids, samples in sample_forecast(result, cube, result.store_ids, dates, n_samples=n_samples,
                                        seed=seed, scenario=scenario):
        rows = cube.store_rows(ids)
        closed = np.where(inside[None, :], cube.status[rows][:, safe] == CLOSED,
                          usual_closing_days(cube, rows)[:, weekday])
        total += np.where(closed[None], 0.0, samples).sum(1)
        observed = cube.observed[rows][:, safe] & inside[None, :]
        actual += np.where(observed, cube.sales[rows][:, safe], 0.0).sum(0)
    stats = summarise(total, LEVELS)
    return pd.DataFrame({"date": pd.to_datetime(dates), "y": np.where(inside, actual, np.nan), **stats})
