"""The encoders of the feature groups: covariates -> a group's labels and slots.

Each encoder returns a GroupEncoding: the group's feature labels and its slots, each slot a pair
(index, value) broadcastable to (stores, days), the index counted within the group's labels (the
registry in features.py adds the group's first column). A categorical group fills one slot with
the active level's index and value 1; a binary or real feature fills one slot with its value.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bhm_core.data.calendar import (
    CHRISTMAS_DAYS,
    CHRISTMAS_SHOPPING_DAYS,
    MONTH_NAMES,
    WEEKDAY_NAMES,
    christmas_code,
    day_of_month,
    easter_offset_code,
    month_of,
    week_of_year,
    weekday_of,
    year_of,
    yearly_terms,
)
from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS, Covariates

HOLIDAY_WINDOW_DAYS = 3  # days before and after a state holiday that get their own effect
TREND_KNOTS_DAYS = (365, 182, 91)  # changepoints of the per-store trend, in days before the origin
CLOSURE_MIN_DAYS = 3  # a closure: at least this many consecutive closed days (refurbishments)
CLOSURE_WINDOW_DAYS = 7  # days before / after a closure that get their own effect
CARNIVAL_DAYS = {"weiberfastnacht": -52, "rosenmontag": -48, "shrove_tuesday": -47}  # from Easter Sunday
EASTER_DAYS = {
    "holy_monday": -6,
    "holy_tuesday": -5,
    "holy_wednesday": -4,
    "maundy_thursday": -3,
    "good_friday": -2,
    "holy_saturday": -1,
    "easter_sunday": 0,
    "easter_monday": 1,
    "easter_tuesday": 2,
}
RECENT_LEVEL_DAYS = 91  # the store's level over its last weeks before the origin, carried forward


class GroupEncoding(NamedTuple):
    labels: list
    slots: list  # [(index within the group, value)], each broadcastable to (stores, days)


def _one_slot(labels, index, value=1.0) -> GroupEncoding:
    return GroupEncoding(list(labels), [(index, value)])


def _day_code(labels, code) -> GroupEncoding:
    """A (T,) code into the labels, -1 on days without any of them."""
    return _one_slot(labels, np.maximum(code, 0)[None, :], (code >= 0)[None, :])


def _window(prefix_before: str, prefix_after: str, width: int, until, since) -> GroupEncoding:
    """Days 1..width before an event (until = days to it) and after it (since = days from it)."""
    labels = [f"{prefix_before}_{d}" for d in range(1, width + 1)] + [
        f"{prefix_after}_{d}" for d in range(1, width + 1)
    ]
    slots = []
    for offset, distance in ((-1, until), (width - 1, since)):
        inside = (distance >= 1) & (distance <= width)
        slots.append((np.where(inside, offset + distance, 0), inside))
    return GroupEncoding(labels, slots)


# ----------------------------------------------------------------------------------------------
# Helpers the encoders (and the yearly profile in cube.py) share


def _days_to_holiday(holiday: np.ndarray, direction: int) -> np.ndarray:
    """(S, T) distance in days to the next (direction=+1) or last (-1) state holiday, capped."""
    cap = HOLIDAY_WINDOW_DAYS + 1
    out = np.full(holiday.shape, cap, np.int16)
    for shift in range(1, cap):
        hit = np.zeros_like(holiday, bool)
        if direction > 0:
            hit[:, :-shift] = holiday[:, shift:] > 0
        else:
            hit[:, shift:] = holiday[:, :-shift] > 0
        out = np.where(hit & (out == cap) & (holiday == 0), shift, out)
    return out


def _near_promo(promo: np.ndarray, reach: int = 2):
    """(S, T) 0/1: a non-promo day within `reach` days after / before a promo day."""
    after = np.zeros(promo.shape, bool)
    before = np.zeros(promo.shape, bool)
    for shift in range(1, reach + 1):
        after[:, shift:] |= promo[:, :-shift] > 0
        before[:, :-shift] |= promo[:, shift:] > 0
    off = promo == 0
    return (after & off).astype(np.float32), (before & off).astype(np.float32)


def _promo2_active(cov: Covariates) -> np.ndarray:
    month = month_of(cov.dates)
    running = cov.promo2_months[:, month]
    started = cov.dates[None, :] >= cov.promo2_since[:, None]  # NaT compares False
    return (running & started & (cov.promo2[:, None] == 1)).astype(np.float32)


def days_from_origin(cov: Covariates) -> np.ndarray:
    """(1 or S, T) int days from the trend's origin (negative before it)."""
    origin = np.asarray(cov.origin, dtype="datetime64[D]")
    origin = origin[:, None] if origin.ndim else origin[None, None]
    return (cov.dates[None, :] - origin).astype(np.int64)


def years_from_origin(cov: Covariates) -> np.ndarray:
    return days_from_origin(cov) / 365.25


def closure_distances(cov: Covariates) -> tuple[np.ndarray, np.ndarray]:
    """(S, T) days since the last day of the latest closure (>= CLOSURE_MIN_DAYS closed days in a row)
    and days to the first day of the next one; a large number where there is none."""
    n_stores, n_days = cov.promo.shape
    far = np.int64(10_000)
    if cov.closed.shape[1] == 0:
        return np.full((n_stores, n_days), far), np.full((n_stores, n_days), far)
    closed = cov.closed.astype(bool)
    t0 = closed.shape[1]
    idx = np.arange(t0)
    # Length of each closed cell's run: from the last open day before it to the next open day after.
    prev_open = np.maximum.accumulate(np.where(~closed, idx, -1), axis=1)
    next_open = np.minimum.accumulate(np.where(~closed, idx, t0)[:, ::-1], axis=1)[:, ::-1]
    long = closed & (next_open - prev_open - 1 >= CLOSURE_MIN_DAYS)
    last = np.maximum.accumulate(np.where(long, idx, -far), axis=1)
    nxt = np.minimum.accumulate(np.where(long, idx, 2 * far)[:, ::-1], axis=1)[:, ::-1]
    col = (cov.dates - cov.grid_first).astype(np.int64)
    inside = (col >= 0) & (col < t0)
    safe = np.clip(col, 0, t0 - 1)
    since = np.where(inside[None, :], col[None, :] - last[:, safe], far)
    until = np.where(inside[None, :], nxt[:, safe] - col[None, :], far)
    return np.minimum(since, far), np.minimum(until, far)


def _competition_open(cov: Covariates) -> np.ndarray:
    """(S, T) 1 from the day a competitor opened, for stores where that day is inside the data
    (an opening before the data's first day is a constant the intercept already holds)."""
    since = cov.competition_since.astype("datetime64[D]")
    inside = since > cov.grid_first  # NaT compares False
    return (inside[:, None] & (cov.dates[None, :] >= since[:, None])).astype(np.float32)


def _season_values(cov: Covariates) -> np.ndarray:
    """(S, T) the season covariate: the all-years profile, or on a store's days up to its origin the
    profile without that day's year (cross-fitting; see Covariates.season_left_out)."""
    week = week_of_year(cov.dates)
    years = year_of(cov.dates)
    index = np.minimum(np.searchsorted(cov.season_years, years), len(cov.season_years) - 1)
    known = cov.season_years[index] == years
    training = (days_from_origin(cov) <= 0) & known[None, :]
    return np.where(training, cov.season_left_out[:, index, week], cov.season[:, week])


# ----------------------------------------------------------------------------------------------
# One encoder per group; `setting` is the group's FeatureSpec value (True, or an integer size)


def weekday(cov: Covariates, setting) -> GroupEncoding:
    return _one_slot([f"weekday_{d}" for d in WEEKDAY_NAMES], weekday_of(cov.dates)[None, :])


def promo(cov, setting):
    return _one_slot(["promo"], 0, cov.promo)


def state_holiday(cov, setting):
    return _one_slot([f"state_holiday_{lvl}" for lvl in STATE_HOLIDAY_LEVELS], cov.state_holiday)


def school_holiday(cov, setting):
    return _one_slot(["school_holiday"], 0, cov.school_holiday)


def promo2(cov, setting):
    return _one_slot(["promo2"], 0, cov.promo2[:, None])


def store_variant(cov, setting):
    return _one_slot([f"variant_{v}" for v in cov.variant_levels], cov.variant[:, None])


def promo_weekday(cov, setting):
    return _one_slot([f"promo_x_{d}" for d in WEEKDAY_NAMES], weekday_of(cov.dates)[None, :], cov.promo)


def day_of_month_group(cov, setting):
    return _one_slot([f"day_{d}" for d in range(1, 32)], day_of_month(cov.dates)[None, :] - 1)


def month(cov, setting):
    return _one_slot([f"month_{m}" for m in MONTH_NAMES], month_of(cov.dates)[None, :])


def holiday_window(cov, setting):
    until = _days_to_holiday(cov.state_holiday, +1)
    since = _days_to_holiday(cov.state_holiday, -1)
    return _window("before_holiday", "after_holiday", HOLIDAY_WINDOW_DAYS, until, since)


def promo2_active(cov, setting):
    return _one_slot(["promo2_active"], 0, _promo2_active(cov))


def trend(cov, setting):
    return _one_slot(["trend_per_year"], 0, years_from_origin(cov))


def promo_window(cov, setting):
    after, before = _near_promo(cov.promo)
    return GroupEncoding(["after_promo", "before_promo"], [(0, after), (1, before)])


def christmas(cov, setting):
    labels = [f"christmas_run_up_{k}" for k in range(CHRISTMAS_SHOPPING_DAYS, 0, -1)] + list(CHRISTMAS_DAYS)
    return _day_code(labels, christmas_code(cov.dates))


def recent_level(cov, setting):
    return _one_slot(["recent_level"], 0, days_from_origin(cov) > -RECENT_LEVEL_DAYS)


def trend_changes(cov, setting):
    years = years_from_origin(cov)
    slots = [(j, np.maximum(years + knot / 365.25, 0.0)) for j, knot in enumerate(TREND_KNOTS_DAYS)]
    return GroupEncoding([f"trend_change_{d}d" for d in TREND_KNOTS_DAYS], slots)


def closure_window(cov, setting):
    since, until = closure_distances(cov)
    return _window("before_closure", "after_closure", CLOSURE_WINDOW_DAYS, until, since)


def competition(cov, setting):
    return _one_slot(["competition_open"], 0, _competition_open(cov))


def school_weekday(cov, setting):
    return _one_slot([f"school_x_{d}" for d in WEEKDAY_NAMES], weekday_of(cov.dates)[None, :], cov.school_holiday)


def season(cov, setting):
    return _one_slot(["season_profile"], 0, _season_values(cov))


def carnival(cov, setting):
    return _day_code(list(CARNIVAL_DAYS), easter_offset_code(cov.dates, CARNIVAL_DAYS))


def easter(cov, setting):
    return _day_code(list(EASTER_DAYS), easter_offset_code(cov.dates, EASTER_DAYS))


def yearly(cov, setting: int):
    h = int(setting)
    labels = [f"yearly_sin{k}" for k in range(1, h + 1)] + [f"yearly_cos{k}" for k in range(1, h + 1)]
    terms = yearly_terms(cov.dates, h)
    return GroupEncoding(labels, [(j, terms[None, :, j]) for j in range(2 * h)])
