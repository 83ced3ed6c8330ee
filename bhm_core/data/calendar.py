"""Calendar arithmetic on datetime64[D] arrays: weekdays, years, Easter, the Christmas run-up."""

from __future__ import annotations

import numpy as np

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# The Christmas run-up is counted in shopping days (Mon-Sat) left before Christmas Eve, not in
# calendar dates: Dec 22 was a Sunday in 2013 and the busy last Monday in 2014, so a per-date effect
# learnt from one year is wrong the next.
CHRISTMAS_SHOPPING_DAYS = 12
CHRISTMAS_DAYS = (
    "advent_sunday",
    "christmas_eve",
    "christmas_holidays",
    "between_the_years",
    "new_years_eve",
    "new_year_first_days",
)  # after the run-up, in code order
SEASON_WEEKS = 52  # bins of the yearly profile (day of year // 7; the last holds days 357-365)


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


def week_of_year(dates: np.ndarray) -> np.ndarray:
    """0..SEASON_WEEKS-1: the day of the year // 7, the year's last day or two in the last bin."""
    return np.minimum(day_of_year(dates) // 7, SEASON_WEEKS - 1)


def christmas_code(dates: np.ndarray) -> np.ndarray:
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


def easter_offset_code(dates: np.ndarray, offsets: dict) -> np.ndarray:
    """(T,) index into `offsets` (name -> days from Easter Sunday) for those days, -1 elsewhere."""
    code = np.full(len(dates), -1, np.int64)
    for year in np.unique(year_of(dates)):
        easter = easter_sunday(int(year))
        for j, offset in enumerate(offsets.values()):
            code[dates == easter + np.timedelta64(offset, "D")] = j
    return code


def yearly_terms(dates: np.ndarray, harmonics: int) -> np.ndarray:
    """(T, 2H) Fourier terms of the day of year, period 365.25 days."""
    days = dates.astype("datetime64[D]").astype(np.float64)
    k = np.arange(1, harmonics + 1)
    angle = 2 * np.pi * days[:, None] * k[None, :] / 365.25
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1).astype(np.float32)
