"""Regions inferred from the dates of past state holidays, and the public holidays ahead they give."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bhm_core.data import public_holidays as ph
from bhm_core.data.cube import build_cube
from bhm_core.data.future import SOURCES, UNKNOWN
from bhm_core.data.validate import default_stores
from bhm_core.errors import ConfigError

pytest.importorskip("holidays")
# Regions whose holidays differ in 2013-2015: Epiphany and Reformation Day (ST), Corpus Christi,
# Assumption and All Saints (SL), Corpus Christi alone (HE), Reformation and Repentance Day (SN), and
# Reformation Day with the Easter and Whit Sundays (BB).
REGIONS = ("ST", "SL", "HE", "SN", "BB")
FIRST, LAST = np.datetime64("2013-01-01"), np.datetime64("2015-05-31")


@pytest.fixture(scope="module")
def chain():
    """10 stores, two per region, closed on Sundays and on their region's holidays."""
    days = np.arange(FIRST, LAST + np.timedelta64(1, "D"))
    rows = []
    rng = np.random.default_rng(0)
    for store in range(1, 11):
        region = REGIONS[(store - 1) % len(REGIONS)]
        codes = ph.holiday_codes("DE", region, FIRST, LAST)
        holiday = np.array([codes.get(d, 0) for d in days])
        open_ = ((days.astype(np.int64) + 3) % 7 != 6) & (holiday == 0)
        rows.append(
            pd.DataFrame(
                {
                    "Store": store,
                    "Date": days,
                    "Open": open_.astype(np.int8),
                    "Sales": np.where(open_, rng.integers(3000, 6000, len(days)), 0).astype(float),
                    "Promo": np.int8(0),
                    "SchoolHoliday": np.int8(0),
                    "StateHoliday": holiday.astype(np.int8),
                }
            )
        )
    train = pd.concat(rows, ignore_index=True)
    return build_cube(train, default_stores(np.arange(1, 11)))


def test_every_stores_region_is_recovered_exactly(chain):
    matches = ph.infer_regions(chain, "DE")
    assert [m.region for m in matches] == [REGIONS[(s - 1) % len(REGIONS)] for s in range(1, 11)]
    assert all(m.exact for m in matches)
    table = ph.regions_table(matches)
    assert table["exact"].all() and (table["recorded"] > 20).all() and not table["also"].any()


def test_regions_the_dates_cannot_tell_apart_are_named_as_ties(chain):
    """Berlin's holidays were those of Hamburg, Bremen, Lower Saxony and Schleswig-Holstein then."""
    days = chain.dates
    codes = ph.holiday_codes("DE", "BE", days[0], days[-1])
    holiday = np.array([codes.get(d, 0) for d in days], np.int8)
    berlin = replace(chain.covariates, state_holiday=np.broadcast_to(holiday, chain.covariates.state_holiday.shape))
    (match, *_) = ph.infer_regions(replace(chain, covariates=berlin), "DE")
    assert match.exact and {match.region, *match.ties} == {"BE", "HB", "HH", "NI", "SH"}


def test_a_future_public_holiday_of_some_regions_closes_exactly_their_stores(chain):
    corpus_christi = np.datetime64("2015-06-04")  # SL, HE; not ST, SN or BB
    calendar = ph.calendar_ahead(chain, ph.infer_regions(chain, "DE"), "2015-06-01", "2015-06-07", "DE")
    values, source = calendar.lookup(chain.store_ids, np.array([corpus_christi]))
    closed = {int(s) for s, o in zip(chain.store_ids, values["open"][:, 0]) if o == 0}
    assert closed == {s for s in range(1, 11) if REGIONS[(s - 1) % len(REGIONS)] in ("SL", "HE")}
    assert set(values["state_holiday"][:, 0]) == {0, ph.PUBLIC}
    inferred = SOURCES.index("inferred")
    assert all((source[i, 0] == inferred) == (int(s) in closed) for i, s in enumerate(chain.store_ids))
    ordinary, _ = calendar.lookup(chain.store_ids, np.array([np.datetime64("2015-06-03")]))
    assert (ordinary["open"] == UNKNOWN).all() and (ordinary["state_holiday"] == 0).all()


def test_easter_and_christmas_get_their_own_levels():
    codes = ph.holiday_codes("DE", "BE", np.datetime64("2015-01-01"), np.datetime64("2015-12-31"))
    assert codes[np.datetime64("2015-04-03")] == ph.EASTER and codes[np.datetime64("2015-04-06")] == ph.EASTER
    assert codes[np.datetime64("2015-12-25")] == ph.CHRISTMAS and codes[np.datetime64("2015-05-01")] == ph.PUBLIC


def test_an_unknown_country_is_refused_with_the_allowed_form():
    with pytest.raises(ConfigError, match="no country 'Atlantis'"):
        ph.regions_of("Atlantis")


def test_a_given_calendar_wins_where_it_knows_a_day_and_inferred_holidays_fill_the_rest(chain):
    from bhm_core.data import future

    given = future.from_frame(
        pd.DataFrame({"Store": [1], "Date": [np.datetime64("2015-06-04")], "open": [1], "promo": [1]}), "calendar"
    )
    ahead, matches = ph.with_public_holidays(chain, given)
    assert len(matches) == 10 and ahead.dates[-1] == LAST + np.timedelta64(366, "D")
    values, source = ahead.lookup([1, 2], np.array([np.datetime64("2015-06-04")]))
    assert values["open"][:, 0].tolist() == [1, 0] and values["promo"][0, 0] == 1  # store 2 is in SL
    assert [SOURCES[c] for c in source[:, 0]] == ["calendar", "inferred"]


def test_data_whose_holidays_match_no_region_get_no_inferred_calendar(chain):
    shuffled = np.roll(chain.covariates.state_holiday, 17, axis=1)  # holidays on the wrong dates
    odd = replace(chain, covariates=replace(chain.covariates, state_holiday=shuffled))
    ahead, matches = ph.with_public_holidays(odd, None)
    assert ahead is None and not any(m.exact for m in matches)


def test_a_forecast_on_a_regional_holiday_expects_exactly_that_regions_stores_closed(chain):
    from bhm_core.forecast.predict import forecast
    from bhm_core.forecast.sampling import Scenario
    from bhm_core.inference.fit import fit
    from bhm_core.model.config import FitConfig

    ahead, _ = ph.with_public_holidays(chain, None)
    result = fit(chain, FitConfig(steps=20))
    frame = forecast(result, chain, None, "2015-06-04", "2015-06-04", n_samples=50, scenario=Scenario(calendar=ahead))
    closed = set(frame.loc[frame["point"] == 0, "store"].astype(int))
    assert closed == {s for s in range(1, 11) if REGIONS[(s - 1) % len(REGIONS)] in ("SL", "HE")}


def test_a_region_whose_catholic_communities_add_a_holiday_is_its_own_candidate():
    assert {"BY:catholic", "SN:catholic"} <= set(ph.regions_of("DE"))
    first, last = np.datetime64("2014-08-01"), np.datetime64("2014-08-31")
    assert ph.holiday_codes("DE", "BY:catholic", first, last) == {np.datetime64("2014-08-15"): ph.PUBLIC}
    assert ph.holiday_codes("DE", "BY", first, last) == {}
