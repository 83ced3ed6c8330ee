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

from dataclasses import dataclass, fields, replace

import numpy as np

from bhm_core.errors import ConfigError

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
STATE_HOLIDAY_LEVELS = ("0", "a", "b", "c")
STATE_HOLIDAY_LABELS = {"0": "none", "a": "public", "b": "Easter", "c": "Christmas"}
FEATURE_GROUPS = ("weekday", "promo", "state_holiday", "school_holiday", "promo2", "store_variant",
                  "yearly", "promo_weekday", "day_of_month", "month", "holiday_window", "promo2_active",
                  "trend", "promo_window", "christmas", "trend_changes", "closure_window", "competition",
                  "school_weekday", "season", "carnival", "easter", "recent_level")
REFERENCE_GROUPS = ("promo", "state_holiday", "school_holiday", "promo2", "store_variant")  # + weekday
# The Christmas run-up is counted in shopping days (Mon-Sat) left before Christmas Eve, not in
# calendar dates: Dec 22 was a Sunday in 2013 and the busy last Monday in 2014, so a per-date effect
# learnt from one year is wrong the next.
CHRISTMAS_SHOPPING_DAYS = 12
CHRISTMAS_DAYS = ("advent_sunday", "christmas_eve", "christmas_holidays", "between_the_years",
                  "new_years_eve", "new_year_first_days")  # after the run-up, in code order
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HOLIDAY_WINDOW_DAYS = 3  # days before and after a state holiday that get their own effect
MAX_YEARLY_HARMONICS = 10
TREND_KNOTS_DAYS = (365, 182, 91)  # changepoints of the per-store trend, in days before the origin
CLOSURE_MIN_DAYS = 3     # a closure: at least this many consecutive closed days (refurbishments)
CLOSURE_WINDOW_DAYS = 7  # days before / after a closure that get their own effect
CARNIVAL_DAYS = {"weiberfastnacht": -52, "rosenmontag": -48, "shrove_tuesday": -47}  # from Easter Sunday
EASTER_DAYS = {"holy_monday": -6, "holy_tuesday": -5, "holy_wednesday": -4, "maundy_thursday": -3,
               "good_friday": -2, "holy_saturday": -1, "easter_sunday": 0, "easter_monday": 1,
               "easter_tuesday": 2}
RECENT_LEVEL_DAYS = 91  # the store's level over its last weeks before the origin, carried forward
SEASON_WEEKS = 52        # bins of the yearly profile (day of year // 7; the last holds days 357-365)
# Groups whose values need the days up to the origin (Covariates.origin), so a fit must not stop
# before it. (The linear trend only counts from it: another origin re-parametrises it.)
ORIGIN_GROUPS = ("trend_changes", "season", "recent_level")


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
    christmas: bool = True         # the last shopping days before Christmas Eve, Dec 24, Dec 25-26,
                                   # Dec 27-30, New Year's Eve, Jan 2-4
    closure_window: bool = True    # days just before / after a closure of >= 3 days (refurbishments)
    season: bool = True            # the store's own yearly profile, from its history before the origin
    carnival: bool = True          # Weiberfastnacht, Rosenmontag, Shrove Tuesday (from the Easter date)
    easter: bool = True            # each day of Holy Week to Easter Tuesday (shopping before the holidays)
    recent_level: bool = True      # a level shift over the last RECENT_LEVEL_DAYS before the origin,
                                   # carried into the forecast (the store's current level)
    competition: bool = True       # after a competitor opened (when that falls inside the data)
    month: bool = False            # one effect per calendar month
    promo_window: bool = False     # non-promo days right after / before a promo run
    trend_changes: bool = False    # trend changepoints 1 year, 6 and 3 months before the origin
    school_weekday: bool = False   # school holiday effect that differs by weekday

    @classmethod
    def reference(cls) -> "FeatureSpec":
        """The published reference model's 23 features (weekday, promo, state and school holiday,
        promo2, store variant) and nothing else."""
        return cls(**{f.name: f.name in REFERENCE_GROUPS for f in fields(cls) if f.name != "yearly_harmonics"})

    def origin_groups(self) -> tuple:
        """The groups on here whose values depend on the origin (ORIGIN_GROUPS)."""
        return tuple(g for g in ORIGIN_GROUPS if getattr(self, g))

    def __post_init__(self):
        # A string such as "no" from a form or a config file is truthy and would switch a group on.
        for name in (f.name for f in fields(self) if f.name != "yearly_harmonics"):
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
    # Day 0 of the trend: the last day of training (the data's last observed day; a backtest's
    # cutoff; a new store's last known day), kept by every window of the cube. Intercepts are then
    # the level where forecasts start; with a mean-field guide, a distant origin would inflate the
    # level's uncertainty by the trend's (their posterior correlation is not represented).
    # A datetime64 for every store, or an (S,) array: one origin per store.
    origin: np.datetime64 | np.ndarray
    # Per-store calendars that windows keep whole (take_days does not cut them, so a forecast window
    # past the training days still sees them): looked up by date from grid_first on.
    grid_first: np.datetime64   # the date of column 0 of `closed`
    closed: np.ndarray          # (S, T0) bool: the store was closed that day
    competition_since: np.ndarray  # (S,) datetime64[D]: competitor opened (NaT: unknown)
    # Set by build_cube right after the rest (cube.season_profile reads the other covariates).
    season: np.ndarray | None = None  # (S, SEASON_WEEKS) float32: the store's yearly log-sales profile
    # The same without each year (cube.season_profile): training days (up to the origin) of a year in
    # season_years read these, so the covariate never holds a day's own noise.
    season_left_out: np.ndarray | None = None  # (S, Y, SEASON_WEEKS) float32
    season_years: np.ndarray | None = None     # (Y,) int

    def take_stores(self, rows: np.ndarray) -> "Covariates":
        origin = self.origin[rows] if np.ndim(self.origin) else self.origin
        return replace(self, promo=self.promo[rows], state_holiday=self.state_holiday[rows],
                       school_holiday=self.school_holiday[rows], promo2=self.promo2[rows],
                       variant=self.variant[rows], promo2_months=self.promo2_months[rows],
                       promo2_since=self.promo2_since[rows], origin=origin, closed=self.closed[rows],
                       competition_since=self.competition_since[rows], season=self.season[rows],
                       season_left_out=self.season_left_out[rows])

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


def year_of(dates: np.ndarray) -> np.ndarray:
    return dates.astype("datetime64[Y]").astype(np.int64) + 1970


def month_of(dates: np.ndarray) -> np.ndarray:
    """January = 0 ... December = 11."""
    return dates.astype("datetime64[M]").astype(np.int64) % 12


def day_of_month(dates: np.ndarray) -> np.ndarray:
    """1 ... 31."""
    return (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1


def day_of_year(dates: np.ndarray) -> np.ndarray:
    """0 on Jan 1."""
    return (dates - dates.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)


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


def _christmas_code(dates: np.ndarray) -> np.ndarray:
    """(T,) code into the christmas labels, -1 outside the season: 0..CHRISTMAS_SHOPPING_DAYS-1 for
    the run-up (0 the earliest, CHRISTMAS_SHOPPING_DAYS-1 the last Mon-Sat before Dec 24), then
    CHRISTMAS_DAYS in order (a Sunday inside the run-up is an advent Sunday)."""
    month, day, weekday = month_of(dates), day_of_month(dates), weekday_of(dates)
    n = CHRISTMAS_SHOPPING_DAYS
    special = {name: n + j for j, name in enumerate(CHRISTMAS_DAYS)}
    code = np.full(len(dates), -1, np.int64)
    for t in np.flatnonzero((month == 11) & (day < 24)):
        # Mon-Sat days from this date to Dec 23: 1 on the last shopping day before Christmas Eve.
        span = weekday_of(dates[t] + np.arange(24 - day[t]))
        left = int((span != 6).sum())  # a Sunday gets the count of the Monday after it
        if left <= n:
            code[t] = special["advent_sunday"] if weekday[t] == 6 else n - left
    december, january = month == 11, month == 0
    code[december & (day == 24)] = special["christmas_eve"]
    code[december & ((day == 25) | (day == 26))] = special["christmas_holidays"]
    code[december & (day >= 27) & (day <= 30)] = special["between_the_years"]
    code[december & (day == 31)] = special["new_years_eve"]
    code[january & (day >= 2) & (day <= 4)] = special["new_year_first_days"]
    return code


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


def _days_from_origin(cov: Covariates) -> np.ndarray:
    """(1 or S, T) int days from the trend's origin (negative before it)."""
    origin = np.asarray(cov.origin, dtype="datetime64[D]")
    origin = origin[:, None] if origin.ndim else origin[None, None]
    return (cov.dates[None, :] - origin).astype(np.int64)


def _years_from_origin(cov: Covariates) -> np.ndarray:
    return _days_from_origin(cov) / 365.25


def _closure_distances(cov: Covariates) -> tuple[np.ndarray, np.ndarray]:
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


def easter_sunday(year: int) -> np.datetime64:
    """Western (Gregorian) Easter Sunday: the anonymous Gregorian algorithm."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = (h + l - 7 * m + 114) % 31 + 1
    return np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "D")


def _easter_offset_code(dates: np.ndarray, offsets: dict) -> np.ndarray:
    """(T,) index into `offsets` (name -> days from Easter Sunday) for those days, -1 elsewhere."""
    code = np.full(len(dates), -1, np.int64)
    for year in np.unique(year_of(dates)):
        easter = easter_sunday(int(year))
        for j, offset in enumerate(offsets.values()):
            code[dates == easter + np.timedelta64(offset, "D")] = j
    return code


def week_of_year(dates: np.ndarray) -> np.ndarray:
    """0..SEASON_WEEKS-1: the day of the year // 7, the year's last day or two in the last bin."""
    return np.minimum(day_of_year(dates) // 7, SEASON_WEEKS - 1)


def _season_values(cov: Covariates) -> np.ndarray:
    """(S, T) the season covariate: the all-years profile, or on a store's days up to its origin the
    profile without that day's year (cross-fitting; see Covariates.season_left_out)."""
    week = week_of_year(cov.dates)
    years = year_of(cov.dates)
    index = np.minimum(np.searchsorted(cov.season_years, years), len(cov.season_years) - 1)
    known = cov.season_years[index] == years
    training = (_days_from_origin(cov) <= 0) & known[None, :]
    return np.where(training, cov.season_left_out[:, index, week], cov.season[:, week])


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

    def add_day_code(start, code):
        """A (T,) code into the group's labels, -1 on days without any of them."""
        add_slot(start + np.maximum(code, 0)[None, :], (code >= 0)[None, :])

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
        add_slot(start + day_of_month(cov.dates)[None, :] - 1, 1.0)
    if spec.month:
        start = add_group("month", [f"month_{m}" for m in MONTH_NAMES])
        add_slot(start + month_of(cov.dates)[None, :], 1.0)
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
        add_slot(start, _years_from_origin(cov))
    if spec.promo_window:
        start = add_group("promo_window", ["after_promo", "before_promo"])
        after, before = _near_promo(cov.promo)
        add_slot(start, after)
        add_slot(start + 1, before)
    if spec.christmas:
        labels = [f"christmas_run_up_{k}" for k in range(CHRISTMAS_SHOPPING_DAYS, 0, -1)] + list(CHRISTMAS_DAYS)
        start = add_group("christmas", labels)
        add_day_code(start, _christmas_code(cov.dates))
    if spec.recent_level:
        start = add_group("recent_level", ["recent_level"])
        add_slot(start, _days_from_origin(cov) > -RECENT_LEVEL_DAYS)
    if spec.trend_changes:
        labels = [f"trend_change_{d}d" for d in TREND_KNOTS_DAYS]
        start = add_group("trend_changes", labels)
        years = _years_from_origin(cov)
        for j, knot in enumerate(TREND_KNOTS_DAYS):
            add_slot(start + j, np.maximum(years + knot / 365.25, 0.0))
    if spec.closure_window:
        w = CLOSURE_WINDOW_DAYS
        labels = [f"before_closure_{d}" for d in range(1, w + 1)] + [f"after_closure_{d}" for d in range(1, w + 1)]
        start = add_group("closure_window", labels)
        since, until = _closure_distances(cov)
        for offset, distance in ((start - 1, until), (start + w - 1, since)):
            inside = (distance >= 1) & (distance <= w)
            add_slot(np.where(inside, offset + distance, start), inside)
    if spec.competition:
        start = add_group("competition", ["competition_open"])
        add_slot(start, _competition_open(cov))
    if spec.school_weekday:
        start = add_group("school_weekday", [f"school_x_{d}" for d in WEEKDAY_NAMES])
        add_slot(start + weekday_of(cov.dates)[None, :], cov.school_holiday)
    if spec.season:
        start = add_group("season", ["season_profile"])
        add_slot(start, _season_values(cov))
    for group, offsets in (("carnival", CARNIVAL_DAYS), ("easter", EASTER_DAYS)):
        if getattr(spec, group):
            add_day_code(add_group(group, list(offsets)), _easter_offset_code(cov.dates, offsets))
    if spec.yearly_harmonics:
        h = spec.yearly_harmonics
        labels = [f"yearly_sin{k}" for k in range(1, h + 1)] + [f"yearly_cos{k}" for k in range(1, h + 1)]
        start = add_group("yearly", labels)
        terms = _yearly_terms(cov.dates, h)
        for j in range(2 * h):
            add_slot(start + j, terms[None, :, j])
    return Design(index=np.stack(slot_index, axis=-1), value=np.stack(slot_value, axis=-1),
                  names=tuple(names), groups=tuple(groups))
