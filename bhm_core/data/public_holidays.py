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
from bhm_core.data.future import MAX_AHEAD_DAYS, SOURCES, UNKNOWN, FutureCalendar
from bhm_core.errors import ConfigError

PUBLIC, EASTER, CHRISTMAS = (STATE_HOLIDAY_LEVELS.index(level) for level in "abc")
# Public holidays are inferred only when at least this share of the stores that recorded holidays
# match a region of the country on every date: data from another country match none well.
MIN_EXACT_SHARE = 0.5
CATHOLIC = "catholic"  # the holidays package's category of holidays kept in Catholic communities


def regions_of(country: str) -> tuple[str, ...]:
    """The country's first-level regions (for Germany its 16 states), as the holidays package names
    them, and each region's variant with the holidays of its Catholic communities where those add
    dates ("BY:catholic": Assumption Day in much of Bavaria, which Rossmann's Bavarian stores keep)."""
    cls = _country(country)
    plain = tuple(s for s in cls.subdivisions if len(s) == 2 and s.isupper())
    if CATHOLIC not in getattr(cls, "supported_categories", ()):
        return plain
    years = range(2000, 2031)
    variants = tuple(
        f"{region}:{CATHOLIC}"
        for region in plain
        if set(cls(subdiv=region, years=years, categories=("public", CATHOLIC))) - set(cls(subdiv=region, years=years))
    )
    return plain + variants


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
    subdiv, _, category = region.partition(":")
    categories = ("public", category) if category else ("public",)
    out = {}
    for day in cls(subdiv=subdiv, years=years, categories=categories):
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
    regions = sorted({m.region for m in matches if m.region})
    codes = np.zeros((len(regions) + 1, len(days)), np.int8)  # the last row: a store without a region
    for j, region in enumerate(regions):
        for date, code in holiday_codes(country, region, first, last).items():
            codes[j, int((date - first).astype(np.int64))] = code
    which = np.array([regions.index(m.region) if m.region else len(regions) for m in matches], np.int64)
    rows = cube.store_rows([m.store for m in matches])
    state_holiday = codes[which]
    opened = np.full(state_holiday.shape, UNKNOWN, np.int8)
    for i, j in zip(*np.nonzero(state_holiday)):  # a few holidays per store: a loop is cheap
        opened[i, j] = _open_on_holiday(cube, rows[i], days[j])
    values = {
        "open": opened,
        "promo": np.full(opened.shape, UNKNOWN, np.int8),
        "state_holiday": state_holiday,
        "school_holiday": _year_before(cube, rows, days),
    }
    source = np.where(state_holiday > 0, SOURCES.index("inferred"), SOURCES.index("estimated")).astype(np.int8)
    order = np.argsort([m.store for m in matches])
    return FutureCalendar(
        np.asarray([m.store for m in matches], np.int64)[order],
        first,
        {name: grid[order] for name, grid in values.items()},
        source[order],
    )


def _year_before(cube: SalesCube, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(stores, days) school holiday flags a year (52 weeks, so weekdays line up) before each day,
    UNKNOWN where the data do not reach back."""
    col = (days - np.timedelta64(364, "D") - cube.dates[0]).astype(np.int64)
    inside = (col >= 0) & (col < cube.n_days)
    back = cube.covariates.school_holiday[rows][:, np.clip(col, 0, cube.n_days - 1)]
    return np.where(inside[None, :], back, UNKNOWN).astype(np.int8)


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


def with_public_holidays(
    cube: SalesCube, calendar: FutureCalendar | None, country: str = "DE"
) -> tuple[FutureCalendar | None, list[RegionMatch]]:
    """The calendar ahead a forecast uses, and the region matches behind it: `calendar` where it
    knows a store-day, then the inferred public holidays and estimated school holidays of the
    year after the data. Without a good match (MIN_EXACT_SHARE) only `calendar`."""
    matches = infer_regions(cube, country)
    recorded = [m for m in matches if m.recorded]
    if not recorded or np.mean([m.exact for m in recorded]) < MIN_EXACT_SHARE:
        return calendar, matches
    first = cube.dates[-1] + np.timedelta64(1, "D")
    inferred = calendar_ahead(cube, matches, first, cube.dates[-1] + np.timedelta64(MAX_AHEAD_DAYS, "D"), country)
    return (inferred if calendar is None else calendar.over(inferred)), matches
