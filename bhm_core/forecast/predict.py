"""Posterior predictive forecasts as tidy frames, a chunk of stores at a time.

Output is a tidy frame in the metrics schema (store, date, method, y, point, lo_L/hi_L, crps) plus
`median`, `open`, `known`, `expected_closed`, `promo` and `state_holiday` columns; daily totals over
the stores come from summed draws (never from summed quantiles).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from bhm_core.data.calendar import weekday_of
from bhm_core.data.cube import CLOSED, MISSING, SalesCube
from bhm_core.data.future import UNKNOWN
from bhm_core.evaluation.metrics import crps_from_samples
from bhm_core.forecast.sampling import CHUNK_STORES, Scenario, forecast_dates, sample_forecast
from bhm_core.forecast.summaries import LEVELS, summarise, summarise_cells
from bhm_core.inference.state import FitResult

CLOSED_WEEKS = 8  # recent occurrences of a weekday that decide a store's usual closing days
CLOSED_SHARE = 0.75  # closed on at least this share of them -> expected closed after the data
METHOD = "hierarchical"


def forecast(
    result: FitResult,
    cube: SalesCube,
    store_ids=None,
    first=None,
    last=None,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    chunk_stores: int = CHUNK_STORES,
) -> pd.DataFrame:
    """Tidy per-store-day forecast over [first, last] (defaults: the cube's days).

    Closed days get a forecast of 0 (a closed store sells nothing); `y` holds the actual where the
    cube observed it, and `crps` is scored against it. For more stores than memory should hold,
    stream the same frames to a file with `stream.forecast_to_parquet`.
    """
    frames = list(
        forecast_chunks(
            result,
            cube,
            store_ids,
            first,
            last,
            n_samples=n_samples,
            seed=seed,
            scenario=scenario,
            levels=levels,
            chunk_stores=chunk_stores,
        )
    )
    return pd.concat(frames, ignore_index=True)


def forecast_chunks(
    result: FitResult,
    cube: SalesCube,
    store_ids=None,
    first=None,
    last=None,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    chunk_stores: int = CHUNK_STORES,
):
    """`forecast`'s frame, one chunk of stores at a time (memory bounded by the chunk)."""
    store_ids = result.store_ids if store_ids is None else np.asarray(store_ids, dtype=np.int64)
    dates = forecast_dates(first if first is not None else cube.dates[0], last if last is not None else cube.dates[-1])
    for draws in chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, chunk_stores):
        yield cell_frame(draws, dates, levels)


def forecast_with_total(
    result: FitResult, cube: SalesCube, store_ids, first, last, *, n_samples: int = 500, seed: int = 0, levels=LEVELS
) -> tuple:
    """(`forecast`'s frame, `forecast_total(observed_only=True)`'s frame) from one set of draws."""
    dates = forecast_dates(first, last)
    total = DailyTotal(n_samples, dates, observed_only=True)
    frames = []
    for draws in chunk_draws(
        result, cube, np.asarray(store_ids, dtype=np.int64), dates, n_samples, seed, Scenario(), CHUNK_STORES
    ):
        frames.append(cell_frame(draws, dates, levels))
        total.add(draws)
    return pd.concat(frames, ignore_index=True), total.frame(levels)


class Draws(NamedTuple):
    """One chunk of stores over the window: its draws (closed days 0) and what the cube knows."""

    ids: np.ndarray
    samples: np.ndarray  # (n_samples, stores, days)
    actual: np.ndarray  # (stores, days), NaN where not observed
    status: np.ndarray
    expected: np.ndarray  # expected closed (after the data, on a usual closing weekday)
    covariates: object


def chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, chunk_stores, expected=False):
    for ids, samples, cov in sample_forecast(
        result,
        cube,
        store_ids,
        dates,
        n_samples=n_samples,
        seed=seed,
        scenario=scenario,
        chunk_stores=chunk_stores,
        expected=expected,
    ):
        actual, status, expected = _actuals(cube, ids, dates, scenario)
        yield Draws(ids, np.where(status == CLOSED, 0.0, samples), actual, status, expected, cov)


def cell_frame(draws: Draws, dates: np.ndarray, levels) -> pd.DataFrame:
    ids, samples, actual, status, expected, cov = draws
    stats, ordered = summarise_cells(samples.reshape(samples.shape[0], -1).T, levels)
    frame = pd.DataFrame(
        {
            "store": np.repeat(ids, len(dates)),
            "date": np.tile(dates, len(ids)),
            "method": METHOD,
            "y": actual.ravel(),
            **{k: v.ravel() for k, v in stats.items()},
            "crps": crps_from_samples(actual.ravel(), ordered, presorted=True),
            "open": (status != CLOSED).ravel(),
            "known": (status != MISSING).ravel() & ~expected.ravel(),
            "expected_closed": expected.ravel(),
            "promo": cov.promo.ravel().astype(bool),
            "state_holiday": cov.state_holiday.ravel() > 0,
        }
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


class DailyTotal:
    """The daily sum of sampled store paths (not of quantiles), added chunk by chunk.

    observed_only: sum only the store-days whose sales were observed, so that the forecast total
    and the actual total cover the same stores (scoring a backtest's total); otherwise every
    store-day not known to be closed counts."""

    def __init__(self, n_samples: int, dates: np.ndarray, observed_only: bool):
        self.dates, self.observed_only = dates, observed_only
        self.total = np.zeros((n_samples, len(dates)))
        self.actual = np.zeros(len(dates))

    def add(self, draws: Draws) -> None:
        counted = ~np.isnan(draws.actual) if self.observed_only else draws.status != CLOSED
        self.total += np.where(counted, draws.samples, 0.0).sum(1)
        self.actual += np.nansum(draws.actual, 0)

    def frame(self, levels) -> pd.DataFrame:
        return pd.DataFrame({"date": pd.to_datetime(self.dates), "y": self.actual, **summarise(self.total, levels)})


def usual_closing_days(cube: SalesCube, rows: np.ndarray) -> np.ndarray:
    """(stores, 7) bool: weekdays on which a store was closed in most of its last recorded weeks."""
    weekday = weekday_of(cube.dates)
    status = cube.status[rows]
    out = np.zeros((len(rows), 7), bool)
    for day in range(7):
        recent = status[:, weekday == day]
        known = recent != MISSING
        # the last CLOSED_WEEKS recorded occurrences of this weekday, per store
        rank = np.cumsum(known[:, ::-1], axis=1)[:, ::-1]
        window = known & (rank <= CLOSED_WEEKS)
        closed = ((recent == CLOSED) & window).sum(1)
        out[:, day] = (window.sum(1) > 0) & (closed >= CLOSED_SHARE * np.maximum(window.sum(1), 1))
    return out


def _actuals(cube: SalesCube, ids, dates, scenario: Scenario):
    """Observed sales (NaN elsewhere) and status on the window, for stores of the cube.

    Days after the data count as CLOSED (expected) where the scenario's calendar says the store is
    closed, and where it does not know, on the store's usual closing weekdays: a store shut on
    Sundays for years gets no Sunday forecast from a weekday effect it never showed.
    """
    rows = cube.store_rows(ids)
    col = (dates - cube.dates[0]).astype(np.int64)
    inside = (col >= 0) & (col < cube.n_days)
    safe = np.clip(col, 0, cube.n_days - 1)
    observed = cube.observed[rows][:, safe] & inside[None, :]
    actual = np.where(observed, cube.sales[rows][:, safe], np.nan)
    status = np.where(inside[None, :], cube.status[rows][:, safe], MISSING)
    after = col >= cube.n_days
    planned = scenario.ahead(ids, dates)[0]["open"]
    usual = usual_closing_days(cube, rows)[:, weekday_of(dates)]
    expected = after[None, :] & np.where(planned != UNKNOWN, planned == 0, usual)
    return actual, np.where(expected, CLOSED, status), expected


def forecast_total(
    result: FitResult,
    cube: SalesCube,
    store_ids,
    first,
    last,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    observed_only: bool = False,
) -> pd.DataFrame:
    """Daily sum over the stores with an interval from summed samples (not summed quantiles);
    observed_only as in `DailyTotal`."""
    dates = forecast_dates(first, last)
    total = DailyTotal(n_samples, dates, observed_only)
    for draws in chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, CHUNK_STORES):
        total.add(draws)
    return total.frame(levels)


def store_day_samples(
    result: FitResult,
    cube: SalesCube,
    store_id: int,
    date,
    *,
    n_samples: int = 2000,
    seed: int = 0,
    scenario: Scenario = Scenario(),
) -> np.ndarray:
    """Posterior predictive samples of one store-day, for its density."""
    dates = forecast_dates(date, date)
    _, samples, _ = next(
        sample_forecast(result, cube, [store_id], dates, n_samples=n_samples, seed=seed, scenario=scenario)
    )
    return samples[:, 0, 0]
