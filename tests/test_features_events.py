"""Trend changepoints, closures, competition openings, school holiday by weekday, trend origins."""

import numpy as np
import pandas as pd
import pytest
from test_features import dense

from bhm_core.data.cube import build_cube
from bhm_core.data.encoders import CLOSURE_WINDOW_DAYS, TREND_KNOTS_DAYS
from bhm_core.data.features import FeatureSpec, encode
from bhm_core.errors import DataError


def _cube(spec, days=60, closed=None, school=(), stores=None, last_sales_day=None):
    """Two stores from 2015-01-01; closed: {store: [day positions]}; sales blank after last_sales_day."""
    closed = closed or {}
    dates = pd.date_range("2015-01-01", periods=days)
    rows = []
    for store in (1, 2):
        for i, d in enumerate(dates):
            is_open = i not in closed.get(store, ())
            blank = last_sales_day is not None and i > last_sales_day
            rows.append(
                {
                    "Store": store,
                    "Date": d,
                    "Sales": np.nan if blank else (100.0 + i) * is_open,
                    "Open": int(is_open),
                    "Promo": 0,
                    "StateHoliday": 0,
                    "SchoolHoliday": int(i in school),
                }
            )
    train = pd.DataFrame(rows)
    train["Date"] = train["Date"].to_numpy().astype("datetime64[D]")
    stores = (
        stores
        if stores is not None
        else pd.DataFrame({"Store": [1, 2], "StoreType": ["a", "a"], "Assortment": ["a", "a"], "Promo2": [0, 0]})
    )
    return build_cube(train, stores, spec)


def test_closure_window_marks_days_around_closures_of_three_days_or_more():
    cube = _cube(FeatureSpec(closure_window=True), closed={1: [20, 21, 22, 23], 2: [20, 21]})
    before, names = dense(cube, "before_closure")
    after, _ = dense(cube, "after_closure")
    assert names == [f"before_closure_{d}" for d in range(1, CLOSURE_WINDOW_DAYS + 1)]
    assert before[0, 19, 0] == 1 and before[0, 13, 6] == 1 and before[0, 12].sum() == 0
    assert after[0, 24, 0] == 1 and after[0, 30, 6] == 1 and after[0, 31].sum() == 0
    assert before[0, 20:24].sum() == 0 and after[0, 20:24].sum() == 0  # the closed days themselves
    assert before[1].sum() == 0 and after[1].sum() == 0  # two closed days are no closure


def test_a_training_window_still_sees_a_closure_after_its_last_day():
    cube = _cube(FeatureSpec(closure_window=True), closed={1: [20, 21, 22]})
    train = cube.select_days(None, cube.dates[17])
    redone = encode(train.spec, train.covariates)
    np.testing.assert_array_equal(redone.index, cube.design.index[:, :18])
    before, _ = dense(train, "before_closure")
    assert before[0, 17, 2] == 1  # three days before the closure that starts after the window


def test_competition_open_only_when_the_opening_falls_inside_the_data():
    stores = pd.DataFrame(
        {
            "Store": [1, 2],
            "StoreType": ["a", "a"],
            "Assortment": ["a", "a"],
            "Promo2": [0, 0],
            "CompetitionOpenSinceMonth": [2, 6],
            "CompetitionOpenSinceYear": [2015, 2010],
        }
    )
    cube = _cube(FeatureSpec(competition=True), stores=stores)
    x, names = dense(cube, "competition")
    assert names == ["competition_open"]
    feb = cube.dates >= np.datetime64("2015-02-01")
    assert np.all(x[0, feb, 0] == 1) and np.all(x[0, ~feb, 0] == 0)
    assert np.all(x[1, :, 0] == 0)  # opened long before the data: a constant, left to the intercept


def test_competition_without_the_columns_is_all_zero():
    cube = _cube(FeatureSpec(competition=True))
    x, _ = dense(cube, "competition")
    assert not x.any()


def test_trend_changes_are_hinges_before_the_origin():
    cube = _cube(FeatureSpec(trend=True, trend_changes=True), days=400)
    x, names = dense(cube, "trend_change")
    assert names == [f"trend_change_{d}d" for d in TREND_KNOTS_DAYS]
    for j, knot in enumerate(TREND_KNOTS_DAYS):
        assert x[0, -1, j] == pytest.approx(knot / 365.25)
        assert x[0, -1 - knot, j] == 0 and x[0, -knot, j] == pytest.approx(1 / 365.25)


def test_school_holiday_by_weekday():
    cube = _cube(FeatureSpec(school_weekday=True), school=(5,))
    x, names = dense(cube, "school_x_")
    # 2015-01-06 (position 5) was a Tuesday
    assert x[0, 5, names.index("school_x_Tue")] == 1 and x[0].sum() == 1


def test_origin_is_the_last_day_with_sales_and_can_move_per_store():
    cube = _cube(FeatureSpec(trend=True), days=40, last_sales_day=29)
    assert cube.covariates.origin == cube.dates[29]
    x, _ = dense(cube, "trend")
    assert x[0, 29, 0] == 0 and x[0, 39, 0] == pytest.approx(10 / 365.25)
    moved = cube.with_origin(np.array([cube.dates[0], cube.dates[9]]))
    y, _ = dense(moved, "trend")
    assert y[0, 0, 0] == 0 and y[1, 9, 0] == 0 and y[1, 0, 0] == pytest.approx(-9 / 365.25)
    one = moved.select_stores([2])  # the per-store origin follows the store
    z, _ = dense(one, "trend")
    assert z[0, 9, 0] == 0
    with pytest.raises(DataError, match="one trend origin per store"):
        cube.with_origin(np.array([cube.dates[0]] * 3))


def test_new_flags_are_validated():
    from bhm_core.errors import ConfigError

    with pytest.raises(ConfigError, match="closure_window"):
        FeatureSpec(closure_window="no")


def test_easter_and_carnival_days():
    from bhm_core.data.calendar import easter_sunday

    assert [str(easter_sunday(y)) for y in (2013, 2014, 2015, 2016)] == [
        "2013-03-31",
        "2014-04-20",
        "2015-04-05",
        "2016-03-27",
    ]
    dates = pd.date_range("2015-02-10", periods=10)
    rows = [
        {"Store": 1, "Date": d, "Sales": 100.0, "Open": 1, "Promo": 0, "StateHoliday": 0, "SchoolHoliday": 0}
        for d in dates
    ]
    train = pd.DataFrame(rows)
    train["Date"] = train["Date"].to_numpy().astype("datetime64[D]")
    stores = pd.DataFrame({"Store": [1], "StoreType": ["a"], "Assortment": ["a"], "Promo2": [0]})
    cube = build_cube(train, stores, FeatureSpec(carnival=True))
    x, names = dense(cube, "")
    col = {n: i for i, n in enumerate(names)}
    day = {str(d): i for i, d in enumerate(cube.dates)}
    assert x[0, day["2015-02-12"], col["weiberfastnacht"]] == 1
    assert x[0, day["2015-02-16"], col["rosenmontag"]] == 1
    assert x[0, day["2015-02-17"], col["shrove_tuesday"]] == 1
    assert x[0, :, [col[n] for n in ("weiberfastnacht", "rosenmontag", "shrove_tuesday")]].sum() == 3


def _day_cube(first, days, spec):
    dates = pd.date_range(first, periods=days)
    train = pd.DataFrame(
        {
            "Store": 1,
            "Date": dates.to_numpy().astype("datetime64[D]"),
            "Sales": 100.0,
            "Open": 1,
            "Promo": 0,
            "StateHoliday": 0,
            "SchoolHoliday": 0,
        }
    )
    stores = pd.DataFrame({"Store": [1], "StoreType": ["a"], "Assortment": ["a"], "Promo2": [0]})
    cube = build_cube(train, stores, spec)
    return cube, {str(d): i for i, d in enumerate(cube.dates)}


def _active(cube, day, group):
    """Name of the one active feature of `group` on a day (None when none is)."""
    x, names = dense(cube, "")
    on = [n for n, g, v in zip(names, cube.design.groups, x[0, day]) if g == group and v]
    assert len(on) <= 1
    return on[0] if on else None


def test_christmas_run_up_counts_shopping_days_not_calendar_dates():
    # Dec 22 was a Sunday in 2013 and the second-last shopping day (Monday) in 2014: the run-up
    # effect a forecast for 2014 uses must be the one learnt on the matching shopping day of 2013.
    cube, day = _day_cube("2013-12-01", 410, FeatureSpec(christmas=True))
    at = lambda d: _active(cube, day[d], "christmas")  # noqa: E731
    assert at("2013-12-23") == at("2014-12-23") == "christmas_run_up_1"  # Mon / Tue
    assert at("2013-12-21") == at("2014-12-22") == "christmas_run_up_2"  # Sat / Mon
    assert at("2013-12-22") == at("2014-12-21") == "advent_sunday"
    assert at("2013-12-10") == "christmas_run_up_12" and at("2013-12-09") is None
    assert at("2013-12-24") == "christmas_eve" and at("2013-12-26") == "christmas_holidays"
    assert at("2013-12-27") == at("2013-12-30") == "between_the_years"
    assert at("2014-12-31") == "new_years_eve" and at("2015-01-01") is None
    assert at("2015-01-02") == at("2015-01-04") == "new_year_first_days" and at("2015-01-05") is None


def test_easter_week_days_follow_the_easter_date():
    cube, day = _day_cube("2015-03-25", 20, FeatureSpec(easter=True, carnival=False, christmas=False))
    at = lambda d: _active(cube, day[d], "easter")  # noqa: E731
    assert at("2015-03-30") == "holy_monday" and at("2015-03-29") is None
    assert at("2015-04-02") == "maundy_thursday" and at("2015-04-04") == "holy_saturday"
    assert at("2015-04-06") == "easter_monday" and at("2015-04-07") == "easter_tuesday"
    assert at("2015-04-08") is None


def test_recent_level_marks_the_last_weeks_before_the_origin_and_the_forecast():
    from bhm_core.data.encoders import RECENT_LEVEL_DAYS

    cube, _day = _day_cube("2015-01-01", 200, FeatureSpec(recent_level=True))
    origin = cube.dates[149]
    x, _ = dense(cube.with_origin(origin), "recent_level")
    first = 149 - RECENT_LEVEL_DAYS + 1
    assert x[0, :first, 0].sum() == 0
    assert (x[0, first:, 0] == 1).all()  # the last weeks of training, and every day after the origin
