"""What-ifs on a forecast: a promo plan against the plan of record, and two fits against each other.

Promo plan: the plan is the calendar ahead as known (a FutureCalendar, or none); the scenario is the
same calendar with promo switched on or off on chosen days of chosen stores. Both are drawn with the
same seed, so every posterior draw is the same in both (draws are keyed by seed and store id), and
the uplift is taken draw by draw on expected sales: what remains in its interval is the uncertainty
about the effect, not the day-to-day noise of sales, which a change of plan does not change.

Two fits (say before and after a prior change): each fit's forecast of the same stores and days,
their difference, and whether it is larger than the forecasts' own uncertainty (the second fit's
mean outside the first's 90 % interval).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from bhm_core.data.calendar import weekday_of
from bhm_core.data.future import FIELDS, SOURCES, UNKNOWN, FutureCalendar
from bhm_core.errors import ConfigError
from bhm_core.forecast.predict import chunk_draws
from bhm_core.forecast.sampling import CHUNK_STORES, Scenario, forecast_dates

LEVEL = 90
TOTAL = "total"  # the store column's value on the rows of the sum over the stores


def scenario_key(scenario: Scenario) -> str:
    """A content key of a scenario (its promo switch and its calendar's cells), for caches."""
    h = hashlib.blake2b(repr(scenario.promo).encode(), digest_size=12)
    calendar = scenario.calendar
    if calendar is not None:
        h.update(np.asarray(calendar.store_ids, np.int64).tobytes())
        h.update(str(calendar.first).encode())
        for name in FIELDS:
            h.update(np.ascontiguousarray(calendar.values[name]).tobytes())
        h.update(np.ascontiguousarray(calendar.source).tobytes())
    return h.hexdigest()


def promo_plan(
    base: FutureCalendar | None, store_ids, first, last, weekdays=(0, 1, 2, 3, 4), promo: int = 1
) -> FutureCalendar:
    """`base` with promo set to `promo` (1 on, 0 off) on the chosen weekdays (0 = Monday) of
    [first, last] for the chosen stores; every other cell as `base` has it. The changed cells are
    marked as planned ("calendar")."""
    if promo not in (0, 1):
        raise ConfigError(f"promo must be 0 or 1, got {promo!r}", key="promo", value=promo, allowed="0 or 1")
    days = forecast_dates(first, last)
    ids = np.unique(np.asarray(store_ids, np.int64))
    if ids.size == 0:
        raise ConfigError("choose at least one store for the promo plan")
    chosen = np.isin(weekday_of(days), list(weekdays))
    if not chosen.any():
        raise ConfigError("no day of the chosen weekdays falls between the first and the last day")
    if base is not None:
        ids = np.union1d(ids, base.store_ids)
        days = np.arange(min(days[0], base.first), max(days[-1], base.dates[-1]) + np.timedelta64(1, "D"))
    values, source = ({f: np.full((len(ids), len(days)), UNKNOWN, np.int8) for f in FIELDS}, None)
    if base is not None:
        values, source = base.lookup(ids, days)
    source = np.full((len(ids), len(days)), UNKNOWN, np.int8) if source is None else source.copy()
    mask = (
        np.isin(ids, np.asarray(store_ids, np.int64))[:, None]
        & (
            (days >= np.datetime64(first, "D"))
            & (days <= np.datetime64(last, "D"))
            & np.isin(weekday_of(days), weekdays)
        )[None, :]
    )
    values = {f: v.copy() for f, v in values.items()}
    values["promo"][mask] = promo
    source[mask] = SOURCES.index("calendar")
    return FutureCalendar(ids, days[0], values, source, None if base is None else base.extra)


def _window_sums(result, cube, store_ids, dates, n_samples, seed, scenario, expected) -> tuple[np.ndarray, dict]:
    """(stores, per store: (n_samples,) sums over the window, per store: (n_samples, days) draws)."""
    ids, sums, daily = [], [], []
    for draws in chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, CHUNK_STORES, expected):
        ids.extend(int(i) for i in draws.ids)
        sums.append(draws.samples.sum(-1))
        daily.append(draws.samples)
    return np.asarray(ids), np.concatenate(sums, axis=1), np.concatenate(daily, axis=1)


def _interval(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tail = (100 - LEVEL) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail], axis=axis)
    return lo, hi


def uplift(result, cube, store_ids, first, last, plan: Scenario, scenario: Scenario, *, n_samples=500, seed=1):
    """(per store and the total: plan and scenario sales over the window, the uplift and its 90 %
    interval in sales and in percent; per store-day: both expected sales). Paired draws."""
    dates = forecast_dates(first, last)
    ids, base, base_daily = _window_sums(result, cube, store_ids, dates, n_samples, seed, plan, True)
    _, what, what_daily = _window_sums(result, cube, store_ids, dates, n_samples, seed, scenario, True)
    rows = []
    for label, a, b in [*zip(ids.tolist(), base.T, what.T), (TOTAL, base.sum(1), what.sum(1))]:
        diff = b - a
        pct = 100.0 * diff / np.maximum(a, 1e-9)
        lo, hi = _interval(diff)
        pct_lo, pct_hi = _interval(pct)
        rows.append(
            {
                "store": label,
                "plan": float(a.mean()),
                "scenario": float(b.mean()),
                "uplift": float(diff.mean()),
                f"uplift_lo_{LEVEL}": float(lo),
                f"uplift_hi_{LEVEL}": float(hi),
                "uplift_pct": float(100.0 * diff.mean() / max(a.mean(), 1e-9)),
                f"uplift_pct_lo_{LEVEL}": float(pct_lo),
                f"uplift_pct_hi_{LEVEL}": float(pct_hi),
            }
        )
    daily = pd.DataFrame(
        {
            "store": np.repeat(ids, len(dates)),
            "date": pd.to_datetime(np.tile(dates, len(ids))),
            "plan": base_daily.mean(0).ravel(),
            "scenario": what_daily.mean(0).ravel(),
        }
    )
    return pd.DataFrame(rows), daily


def compare_fits(
    first_fit, second_fit, cube, store_ids, first, last, scenario: Scenario = Scenario(), *, n_samples=500, seed=1
):
    """Two fits' forecasts of the same stores and days (sales draws, same seed): per store-day and
    for the daily total, each fit's mean and 90 % interval; per store and for the total over the
    window, the difference and whether it is larger than the forecasts' own uncertainty."""
    dates = forecast_dates(first, last)
    ids, sums_a, daily_a = _window_sums(first_fit, cube, store_ids, dates, n_samples, seed, scenario, False)
    _, sums_b, daily_b = _window_sums(second_fit, cube, store_ids, dates, n_samples, seed, scenario, False)
    frames = []
    for label, a, b in [
        *zip(ids.tolist(), daily_a.transpose(1, 0, 2), daily_b.transpose(1, 0, 2)),
        (TOTAL, daily_a.sum(1), daily_b.sum(1)),
    ]:
        lo_a, hi_a = _interval(a)
        lo_b, hi_b = _interval(b)
        frames.append(
            pd.DataFrame(
                {
                    "store": label,
                    "date": pd.to_datetime(dates),
                    "mean_a": a.mean(0),
                    f"lo_{LEVEL}_a": lo_a,
                    f"hi_{LEVEL}_a": hi_a,
                    "mean_b": b.mean(0),
                    f"lo_{LEVEL}_b": lo_b,
                    f"hi_{LEVEL}_b": hi_b,
                }
            )
        )
    rows = []
    for label, a, b in [*zip(ids.tolist(), sums_a.T, sums_b.T), (TOTAL, sums_a.sum(1), sums_b.sum(1))]:
        lo, hi = _interval(a)
        diff = float(b.mean() - a.mean())
        rows.append(
            {
                "store": label,
                "mean_a": float(a.mean()),
                "mean_b": float(b.mean()),
                "difference": diff,
                "difference_pct": 100.0 * diff / max(float(a.mean()), 1e-9),
                f"lo_{LEVEL}_a": float(lo),
                f"hi_{LEVEL}_a": float(hi),
                "larger_than_uncertainty": bool(b.mean() < lo or b.mean() > hi),
            }
        )
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True)
