"""Public holidays ahead, found without a hand-kept mapping: each store's region is inferred from the
dates of its past state holidays, and that region's future holidays come from the `holidays` package.

Rossmann records a state holiday per store and day (a: public, b: Easter, c: Christmas) but not
where a store is. The stores of one German state share their holidays (Epiphany only in BW, BY and
ST; Corpus Christi in the south and west; Reformation Day in the east; ...), so the dates a store
recorded identify its state, or a few states that cannot be told apart on those dates. For a day
the calendar ahead does not cover, the region's holiday gives the state-holiday level; a store that
closed on the same holiday before is expected closed on it again. School holidays without a
calendar are estimated as the same weeks a year before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bhm_core.data.calendar import easter_sunday, year_of
from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS
from bhm_core.data.cube import CLOSED, MISSING, SalesCube
from bhm_core.data.future import UNKNOWN, FutureCalendar
from bhm_core.errors import ConfigError

PUBLIC, EASTER, CHRISTMAS = (STATE_HOLIDAY_LEVELS.index(level) for level in "abc")


def regions_of(country: str) -> tuple[str, ...]:
    """The country's first-level regions (for Germany its 16 states), as the holidays package names them."""
    cls = _country(country)
    return tuple(s for s in cls.subdivisions if len(s) == 2 and s.isupper())


def _country(country: str):
    import holidays  # imported here: only region inference and calendars ahead need it

    try:
        return holidays.country_holidays(country).__class__
    except NotImplementedError:
        raise ConfigError(
            f"the holidays package knows no country {country!r}; give an ISO code such as DE",
            key="country",
            value=country,
            allowed="an ISO 3166 country code",
        ) from None


def holiday_codes(country: str, region: str, first: np.datetime64, last: np.datetime64) -> dict:
    """{date: state-holiday code} of the region's public holidays in [first, last]: Good Friday and
    Easter Monday are Easter (b), Dec 25-26 Christmas (c), the others public (a)."""
    cls = _country(country)
    years = range(int(year_of(np.array([first]))[0]), int(year_of(np.array([last]))[0]) + 1)
    out = {}
    for day in cls(subdiv=region, years=years):
        date = np.datetime64(day, "D")
        if first <= date <= last:
            out[date] = _code(date)
    return out


def _code(date: np.datetime64) -> int:
    easter = easter_sunday(int(str(date)[:4]))
    if date in (easter - np.timedelta64(2, "D"), easter + np.timedelta64(1, "D")):
        return EASTER
    month_day = str(date)[5:]
    return CHRISTMAS if month_day in ("12-25", "12-26") else PUBLIC


@dataclass(frozen=True)
class RegionMatch:
    store: int
    region: str  # the best-matching region ("" when the store recorded no holiday at all)
    matched: int  # recorded holiday dates that are the region's
    recorded: int  # holiday dates the store recorded
    expected: int  # the region's holidays on the store's recorded days
    ties: tuple  # other regions that match exactly as well

    @property
    def exact(self) -> bool:
        return self.matched == self.recorded == self.expected


def infer_regions(cube: SalesCube, country: str = "DE") -> list[RegionMatch]:
    """Each store's region: the one whose public holidays best match (Jaccard) the dates on which
    the store recorded a state holiday, counted over the days the store has rows."""
    regions = regions_of(country)
    dates = cube.dates
    calendars = np.zeros((len(regions), len(dates)), bool)
    for j, region in enumerate(regions):
        codes = holiday_codes(country, region, dates[0], dates[-1])
        calendars[j] = np.isin(dates, np.array(list(codes), "datetime64[D]"))
    holiday = cube.covariates.state_holiday > 0
    has_row = cube.status != MISSING
    out = []
    for row, store in enumerate(cube.store_ids):
        recorded = holiday[row] & has_row[row]
        expected = calendars & has_row[row][None, :]
        both = (expected & recorded[None, :]).sum(1)
        union = (expected | recorded[None, :]).sum(1)
        score = np.where(union > 0, both / np.maximum(union, 1), 0.0)
        best = int(np.argmax(score))
        ties = tuple(regions[j] for j in np.flatnonzero(score == score[best]) if j != best)
        out.append(
            RegionMatch(
                int(store),
                regions[best] if recorded.any() else "",
                int(both[best]),
                int(recorded.sum()),
                int(expected[best].sum()),
                ties,
            )
        )
    return out


def regions_table(matches: list[RegionMatch]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "store": m.store,
                "region": m.region,
                "matched": m.matched,
                "recorded": m.recorded,
                "expected": m.expected,
                "exact": m.exact,
                "also": ", ".join(m.ties),
            }
            for m in matches
        ]
    )


def calendar_ahead(cube: SalesCube, matches: list[RegionMatch], first, last, country: str = "DE") -> FutureCalendar:
    """What can be known of [first, last] without a calendar: each store's regional public holidays
    (state holiday; closed where the store closed on that holiday the year before), marked
    `inferred`, and school holidays as the same days a year before, marked `estimated`."""
    first, last = np.datetime64(first, "D"), np.datetime64(last, "D")
    days = np.arange(first, last + np.timedelta64(1, "D"))
    rows = []
    by_region = {}
    for row, match in enumerate(matches):
        if match.region not in by_region and match.region:
            by_region[match.region] = holiday_codes(country, match.region, first, last)
        codes = by_region.get(match.region, {})
        school = _year_before(cube, row, days)
        for date in days:
            code = codes.get(date, 0)
            rows.append(
                {
                    "Store": match.store,
                    "Date": date,
                    "state_holiday": code,
                    "school_holiday": school[date],
                    "open": _open_on_holiday(cube, row, date) if code else UNKNOWN,
                    "source": "inferred" if code else "estimated",
                }
            )
    frame = pd.DataFrame(rows)
    calendar = _with_sources(frame)
    return calendar


def _year_before(cube: SalesCube, row: int, days: np.ndarray) -> dict:
    """School holiday flags a year (52 weeks, so weekdays line up) before each day, UNKNOWN where the
    data do not reach back."""
    back = days - np.timedelta64(364, "D")
    col = (back - cube.dates[0]).astype(np.int64)
    inside = (col >= 0) & (col < cube.n_days)
    values = np.where(inside, cube.covariates.school_holiday[row, np.clip(col, 0, cube.n_days - 1)], UNKNOWN)
    return dict(zip(days, values.astype(np.int8)))


def _open_on_holiday(cube: SalesCube, row: int, date: np.datetime64) -> int:
    """0 when the store was closed on the same holiday (same month-day, or same Easter offset) in an
    earlier year of the data, 1 when it was open then, UNKNOWN when the data do not say."""
    year = int(str(date)[:4])
    offset = date - easter_sunday(year)
    seen = []
    for earlier in range(year - 1, year - 4, -1):
        same = (
            (easter_sunday(earlier) + offset)
            if abs(int(offset.astype(np.int64))) <= 60
            else np.datetime64(f"{earlier}{str(date)[4:]}", "D")
        )
        col = int((same - cube.dates[0]).astype(np.int64))
        if 0 <= col < cube.n_days and cube.status[row, col] != MISSING:
            seen.append(cube.status[row, col] == CLOSED)
    return UNKNOWN if not seen else int(not seen[0])


def _with_sources(frame: pd.DataFrame) -> FutureCalendar:
    from bhm_core.data import future

    inferred = (
        future.from_frame(frame[frame["source"] == "inferred"].drop(columns="source"), "inferred")
        if (frame["source"] == "inferred").any()
        else None
    )
    estimated = future.from_frame(frame[frame["source"] == "estimated"].drop(columns="source"), "estimated")
    return inferred.over(estimated) if inferred is not None else estimated
