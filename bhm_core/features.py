"""Feature encoding: raw per-cell covariates -> an index-coded design.

Layout choice: every feature group contributes one or more *slots* per cell, each slot holding the
column index of the active feature and its value. A categorical group (weekday, state holiday, store
variant) fills one slot with value 1, a binary or real feature fills one slot with its value. The
linear predictor is then ``eta[s, t] = sum_k theta[s, index[s, t, k]] * value[s, t, k]``: a gather of
K numbers per cell instead of a dot product with a dense one-hot row. For the reference features
that is 6 slots instead of 23 columns (Rossmann: 38 MB int16+float32 instead of 97 MB float32), and
the fit touches only K parameters per cell. New feature groups add slots here without any change to
the cube or the model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import ConfigError

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
STATE_HOLIDAY_LEVELS = ("0", "a", "b", "c")
STATE_HOLIDAY_LABELS = {"0": "none", "a": "public", "b": "Easter", "c": "Christmas"}
FEATURE_GROUPS = ("weekday", "promo", "state_holiday", "school_holiday", "promo2", "store_variant",
                  "yearly", "promo_weekday", "day_of_month", "month", "holiday_window", "promo2_active",
                  "trend", "promo_window", "christmas")
CHRISTMAS_LEAD_DAYS = 14  # the pre-Christmas run-up: its own effect per day from Dec 11 to Dec 24
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HOLIDAY_WINDOW_DAYS = 3  # days before and after a state holiday that get their own effect
MAX_YEARLY_HARMONICS = 10


@dataclass(frozen=True)
class FeatureSpec:
    """Which feature groups the model sees. The weekday dummies are always on: they are the intercept."""

    promo: bool = True
    state_holiday: bool = True
    school_holiday: bool = True
    promo2: bool = True
    store_variant: bool = True
    yearly_harmonics: int = 0
    # Extensions beyond the reference model. On by default: the ones the Rossmann backtests kept
    # (README: ablation over three cutoffs); off: the ones that did not help there.
    promo_weekday: bool = True     # promo effect that differs by weekday
    day_of_month: bool = True      # pay-day pattern: one effect per day of the month
    holiday_window: bool = True    # days just before / after a state holiday
    promo2_active: bool = True     # the months a store's Promo2 coupon campaign runs
    trend: bool = True             # per-store linear trend (per year)
    christmas: bool = True         # each day of the pre-Christmas run-up, and the days to New Year
    month: bool = False            # one effect per calendar month
    promo_window: bool = False     # non-promo days right after / before a promo run

    @classmethod
    def reference(cls) -> "FeatureSpec":
        """The published reference model's 23 features (weekday, promo, state and school holiday,
        promo2, store variant) and nothing else."""
        return cls(promo_weekday=False, day_of_month=False, holiday_window=False, promo2_active=False,
                   trend=False, christmas=False)

    def __post_init__(self):
        # A string such as "no" from a form or a config file is truthy and would switch a group on.
        for name in ("promo", "state_holiday", "school_holiday", "promo2", "store_variant",
                     "promo_weekday", "day_of_month", "month", "holiday_window", "promo2_active", "trend", "promo_window", "christmas"):
            flag = getattr(self, name)
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"FeatureSpec.{name} must be True or False, got {flag!r}")
            object.__setattr__(self, name, bool(flag))  # np.bool_ -> bool: one repr per cache key
        h = self.yearly_harmonics
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 0 <= h <= MAX_YEARLY_HARMONICS:
            raise ConfigError(
                f"FeatureSpec.yearly_harmonics must be an integer in 0..{MAX_YEARLY_HARMONICS}, got {h!r}")
        object.__setattr__(self, "yearly_harmonics", int(h))


@dataclass(frozen=True, eq=False)
class Covariates:
    """Raw inputs on the store x day grid, before encoding. Codes, not one-hot."""

    dates: np.ndarray          # (T,) datetime64[D]
    promo: np.ndarray          # (S, T) int8, 0/1
    state_holiday: np.ndarray  # (S, T) int8, index into STATE_HOLIDAY_LEVELS
    school_holiday: np.ndarray  # (S, T) int8, 0/1
    promo2: np.ndarray         # (S,) int8, 0/1
    variant: np.ndarray        # (S,) int16, index into variant_levels
    variant_levels: tuple      # e.g. ("a/a", "a/c", ...) as StoreType/Assortment
    promo2_months: np.ndarray  # (S, 12) bool: months in which the store's Promo2 round starts
    promo2_since: np.ndarray   # (S,) datetime64[D]: when Promo2 started (NaT: never)
    # Day 0 of the trend: the data's last day, kept by every window of the cube. Intercepts are then
    # the level where forecasts start; with a mean-field guide, a distant origin would inflate the
    # level's uncertainty by the trend's (their posterior correlation is not represented).
    origin: np.datetime64

    def take_stores(self, rows: np.ndarray) -> "Covariates":
        return replace(self, promo=self.promo[rows], state_holiday=self.state_holiday[rows],
                       school_holiday=self.school_holiday[rows], promo2=self.promo2[rows],
                       variant=self.variant[rows], promo2_months=self.promo2_months[rows],
                       promo2_since=self.promo2_since[rows])

    def take_days(self, cols: np.ndarray) -> "Covariates":
        return replace(self, dates=self.dates[cols], promo=self.promo[:, cols],
                       state_holiday=self.state_holiday[:, cols], school_holiday=self.school_holiday[:, cols])


@dataclass(frozen=True, eq=False)
class Design:
    """Index-coded design: see the module docstring."""

    index: np.ndarray   # (S, T, K) int16 feature column per slot
    value: np.ndarray   # (S, T, K) float32
    names: tuple        # (F,) feature names
    groups: tuple       # (F,) feature group of each feature, one of FEATURE_GROUPS

    @property
    def n_features(self) -> int:
        return len(self.names)


def weekday_of(dates: np.ndarray) -> np.ndarray:
    """Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday)."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    return ((days + 3) % 7).astype(np.int16)


def _yearly_terms(dates: np.ndarray, harmonics: int) -> np.ndarray:
    """(T, 2H) Fourier terms of the day of year, period 365.25 days."""
    days = dates.astype("datetime64[D]").astype(np.float64)
    k = np.arange(1, harmonics + 1)
    angle = 2 * np.pi * days[:, None] * k[None, :] / 365.25
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1).astype(np.float32)


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


def _christmas_code(dates: np.ndarray, lead: int) -> np.ndarray:
    """(T,) 0..lead-1 for Dec 24-lead+1 .. Dec 24, lead for Dec 25-31, -1 elsewhere."""
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    december = month == 11
    run_up = december & (day > 24 - lead) & (day <= 24)
    return np.where(run_up, day - (25 - lead), np.where(december & (day >= 25), lead, -1))


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
    month = (cov.dates.astype("datetime64[M]").astype(np.int64) % 12)
    running = cov.promo2_months[:, month]
    started = cov.dates[None, :] >= cov.promo2_since[:, None]  # NaT compares False
    return (running & started & (cov.promo2[:, None] == 1)).astype(np.float32)


def encode(spec: FeatureSpec, cov: Covariates) -> Design:
    """Encode covariates into slots; feature order is fixed by the spec and the variant levels."""
    n_stores, n_days = cov.promo.shape
    names: list[str] = []
    groups: list[str] = []
    slot_index: list[np.ndarray] = []
    slot_value: list[np.ndarray] = []

    def add_group(group, labels):
        start = len(names)
        names.extend(labels)
        groups.extend([group] * len(labels))
        return start

    def add_slot(index, value):
        slot_index.append(np.broadcast_to(index, (n_stores, n_days)).astype(np.int16))
        slot_value.append(np.broadcast_to(value, (n_stores, n_days)).astype(np.float32))

    start = add_group("weekday", [f"weekday_{d}" for d in WEEKDAY_NAMES])
    add_slot(start + weekday_of(cov.dates)[None, :], 1.0)
    if spec.promo:
        start = add_group("promo", ["promo"])
        add_slot(start, cov.promo)
    if spec.state_holiday:
        start = add_group("state_holiday", [f"state_holiday_{lvl}" for lvl in STATE_HOLIDAY_LEVELS])
        add_slot(start + cov.state_holiday, 1.0)
    if spec.school_holiday:
        start = add_group("school_holiday", ["school_holiday"])
        add_slot(start, cov.school_holiday)
    if spec.promo2:
        start = add_group("promo2", ["promo2"])
        add_slot(start, cov.promo2[:, None])
    if spec.store_variant:
        start = add_group("store_variant", [f"variant_{v}" for v in cov.variant_levels])
        add_slot(start + cov.variant[:, None], 1.0)
    if spec.promo_weekday:
        start = add_group("promo_weekday", [f"promo_x_{d}" for d in WEEKDAY_NAMES])
        add_slot(start + weekday_of(cov.dates)[None, :], cov.promo)
    if spec.day_of_month:
        start = add_group("day_of_month", [f"day_{d}" for d in range(1, 32)])
        day = (cov.dates - cov.dates.astype("datetime64[M]")).astype(np.int64)
        add_slot(start + day[None, :], 1.0)
    if spec.month:
        start = add_group("month", [f"month_{m}" for m in MONTH_NAMES])
        add_slot(start + (cov.dates.astype("datetime64[M]").astype(np.int64) % 12)[None, :], 1.0)
    if spec.holiday_window:
        w = HOLIDAY_WINDOW_DAYS
        labels = [f"before_holiday_{d}" for d in range(1, w + 1)] + [f"after_holiday_{d}" for d in range(1, w + 1)]
        start = add_group("holiday_window", labels)
        for offset, direction in ((start - 1, +1), (start + w - 1, -1)):
            distance = _days_to_holiday(cov.state_holiday, direction)
            inside = distance <= w
            add_slot(np.where(inside, offset + distance, start), inside)
    if spec.promo2_active:
        start = add_group("promo2_active", ["promo2_active"])
        add_slot(start, _promo2_active(cov))
    if spec.trend:
        start = add_group("trend", ["trend_per_year"])
        add_slot(start, ((cov.dates - cov.origin).astype(np.float64) / 365.25)[None, :])
    if spec.promo_window:
        start = add_group("promo_window", ["after_promo", "before_promo"])
        after, before = _near_promo(cov.promo)
        add_slot(start, after)
        add_slot(start + 1, before)
    if spec.christmas:
        lead = CHRISTMAS_LEAD_DAYS
        labels = [f"christmas_minus_{d}" for d in range(lead - 1, -1, -1)] + ["christmas_to_new_year"]
        start = add_group("christmas", labels)
        code = _christmas_code(cov.dates, lead)
        add_slot(start + np.maximum(code, 0)[None, :], (code >= 0).astype(np.float32)[None, :])
    if spec.yearly_harmonics:
        h = spec.yearly_harmonics
        labels = [f"yearly_sin{k}" for k in range(1, h + 1)] + [f"yearly_cos{k}" for k in range(1, h + 1)]
        start = add_group("yearly", labels)
        terms = _yearly_terms(cov.dates, h)
        for j in range(2 * h):
            add_slot(start + j, terms[None, :, j])
    return Design(index=np.stack(slot_index, axis=-1), value=np.stack(slot_value, axis=-1),
                  names=tuple(names), groups=tuple(groups))
