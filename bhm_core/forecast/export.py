"""Forecasts as tables for other tools: the `forecast` command and the HTTP service share this.

A request names stores, a window of days and interval levels; the answer is one row per store-day
(`COLUMNS`: store, date, open, mean, median, point, lo_L, hi_L for each level L, source), the daily
total over the requested stores with intervals from summed draws, and optionally the draws
themselves. The same request (stores, window, levels, samples, seed, calendar) gives the same
numbers whichever surface asks, in whatever chunks the stores are drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from bhm_core.data.cube import CLOSED, SalesCube
from bhm_core.data.future import MAX_AHEAD_DAYS, SOURCES, UNKNOWN
from bhm_core.errors import ConfigError
from bhm_core.forecast.predict import DailyTotal, Draws, chunk_draws
from bhm_core.forecast.sampling import CHUNK_STORES, Scenario
from bhm_core.forecast.summaries import summarise, summarise_cells
from bhm_core.inference.state import FitResult

DEFAULT_LEVELS = (50, 80, 95)
MAX_SAMPLES = 10_000
DEFAULT_SAMPLES = 500


def columns(levels) -> list[str]:
    bounds = [name for level in levels for name in (f"lo_{level}", f"hi_{level}")]
    return ["store", "date", "open", "mean", "median", "point", *bounds, "source"]


@dataclass(frozen=True)
class Request:
    stores: tuple  # store ids
    first: np.datetime64
    last: np.datetime64
    levels: tuple = DEFAULT_LEVELS
    n_samples: int = DEFAULT_SAMPLES
    seed: int = 0

    @property
    def n_days(self) -> int:
        return int((self.last - self.first).astype(np.int64)) + 1


def window(cube: SalesCube, start=None, end=None, horizon: int | None = None) -> tuple[np.datetime64, np.datetime64]:
    """[first, last] from a start and an end, or the `horizon` days after the data; ConfigError with
    the allowed range when the window starts before the data or reaches too far past it."""
    data_first, data_last = cube.dates[0], cube.dates[-1]
    latest = data_last + np.timedelta64(MAX_AHEAD_DAYS, "D")
    if horizon is not None:
        if start is not None or end is not None:
            raise ConfigError("give either a horizon or a start and an end, not both")
        if (
            isinstance(horizon, bool)
            or not isinstance(horizon, (int, np.integer))
            or not 1 <= horizon <= MAX_AHEAD_DAYS
        ):
            raise ConfigError(
                f"horizon must be a whole number of days in 1..{MAX_AHEAD_DAYS}, got {horizon!r}",
                key="horizon",
                value=horizon,
                allowed=f"1..{MAX_AHEAD_DAYS}",
            )
        return data_last + np.timedelta64(1, "D"), data_last + np.timedelta64(int(horizon), "D")
    if start is None or end is None:
        raise ConfigError("give a start and an end date, or a horizon in days")
    first, last = _day(start, "start"), _day(end, "end")
    if last < first:
        raise ConfigError(f"the end {last} is before the start {first}")
    if first < data_first or last > latest:
        raise ConfigError(
            f"the window {first}..{last} is outside the allowed range {data_first}..{latest} (the data "
            f"start on {data_first}; forecasts reach at most {MAX_AHEAD_DAYS} days past {data_last})",
            key="dates",
            value=f"{first}..{last}",
            allowed=f"{data_first}..{latest}",
        )
    return first, last


def _day(value, what: str) -> np.datetime64:
    try:
        return np.datetime64(str(value).strip(), "D")
    except ValueError:
        raise ConfigError(
            f"{what} must be a date like 2015-08-01, got {value!r}", key=what, value=value, allowed="YYYY-MM-DD"
        ) from None


def check_levels(levels) -> tuple:
    out = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 1 <= level <= 99:
            raise ConfigError(
                f"interval levels must be whole percents in 1..99, got {level!r}",
                key="levels",
                value=level,
                allowed="1..99",
            )
        out.append(int(level))
    return tuple(sorted(set(out)))


def check_samples(n_samples) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or not 1 <= n_samples <= MAX_SAMPLES:
        raise ConfigError(
            f"samples must be a whole number in 1..{MAX_SAMPLES:,}, got {n_samples!r}",
            key="samples",
            value=n_samples,
            allowed=f"1..{MAX_SAMPLES}",
        )
    return int(n_samples)


@dataclass(frozen=True, eq=False)
class Part:
    """One chunk of stores: its rows as columns (name -> array, in COLUMNS order), and its draws
    (n_samples, stores, days). The service reads the columns; files read `rows`, a DataFrame."""

    columns: dict
    draws: Draws

    @cached_property
    def rows(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.columns)
        frame["date"] = pd.to_datetime(frame["date"])
        return frame


def parts(
    result: FitResult,
    cube: SalesCube,
    request: Request,
    scenario: Scenario = Scenario(),
    chunk_stores: int = CHUNK_STORES,
) -> Iterator[Part]:
    """The forecast a chunk of stores at a time (memory: one chunk's draws)."""
    dates = request.first + np.arange(request.n_days)
    for draws in chunk_draws(
        result,
        cube,
        np.asarray(request.stores, np.int64),
        dates,
        request.n_samples,
        request.seed,
        scenario,
        chunk_stores,
    ):
        stats, _ = summarise_cells(draws.samples.reshape(request.n_samples, -1).T, request.levels)
        found = {
            "store": np.repeat(draws.ids, len(dates)),
            "date": np.tile(dates, len(draws.ids)),
            "open": (draws.status != CLOSED).ravel(),
            **_named(stats),
            "source": sources(cube, draws.ids, dates, scenario).ravel(),
        }
        yield Part({name: found[name] for name in columns(request.levels)}, draws)


def _named(stats: dict) -> dict:
    """Summaries under the names of the tables: the mean is the mean, the point the RMSPE-optimal one."""
    renamed = {"point": "mean", "point_rmspe": "point"}
    return {renamed.get(k, k): v for k, v in stats.items()}


def sources(cube: SalesCube, store_ids, dates, scenario: Scenario) -> np.ndarray:
    """(stores, days) where each day's covariates came from (future.SOURCES)."""
    _, known = scenario.ahead(store_ids, dates)
    after = np.where(known != UNKNOWN, known, SOURCES.index("default"))
    inside = (dates <= cube.dates[-1])[None, :]
    return np.asarray(SOURCES)[np.where(inside, SOURCES.index("data"), after)]


def draws_frame(draws: Draws, dates: np.ndarray) -> pd.DataFrame:
    """The predictive draws in long form (store, date, draw, sales), for density use."""
    n_samples, n_stores, n_days = draws.samples.shape
    return pd.DataFrame(
        {
            "store": np.repeat(draws.ids, n_days * n_samples),
            "date": pd.to_datetime(np.tile(np.repeat(dates, n_samples), n_stores)),
            "draw": np.tile(np.arange(n_samples), n_stores * n_days),
            "sales": draws.samples.transpose(1, 2, 0).ravel(),
        }
    )


class Total:
    """The daily total over the requested stores, summed draw by draw as chunks arrive."""

    def __init__(self, request: Request):
        self.request = request
        self._sum = DailyTotal(request.n_samples, request.first + np.arange(request.n_days), observed_only=False)

    def add(self, part: Part) -> None:
        self._sum.add(part.draws)

    def columns(self) -> dict:
        """The total's columns (date, mean, median, point, the bounds), name -> array."""
        stats = _named(summarise(self._sum.total, self.request.levels))
        names = ["mean", "median", "point", *columns(self.request.levels)[6:-1]]
        return {"date": self._sum.dates, **{name: stats[name] for name in names}}

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.columns())
        frame["date"] = pd.to_datetime(frame["date"])
        return frame


def tables(
    result: FitResult, cube: SalesCube, request: Request, scenario: Scenario = Scenario(), *, with_draws: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(rows, the daily total, the draws or None) in memory: for requests of bounded size."""
    total, rows, draws = Total(request), [], []
    dates = request.first + np.arange(request.n_days)
    for part in parts(result, cube, request, scenario):
        rows.append(part.rows)
        total.add(part)
        if with_draws:
            draws.append(draws_frame(part.draws, dates))
    return (
        pd.concat(rows, ignore_index=True),
        total.frame(),
        pd.concat(draws, ignore_index=True) if with_draws else None,
    )
