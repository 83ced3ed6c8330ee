"""Feature extensions: each encodes what it claims on a tiny hand-made table."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bhm_core.data.cube import build_cube
from bhm_core.data.features import FeatureSpec


def _cube(spec, days=40, holiday_day=None, promo_days=(), stores=None):
    dates = pd.date_range("2015-01-01", periods=days)
    rows = []
    for store in (1, 2):
        for i, d in enumerate(dates):
            rows.append(
                {
                    "Store": store,
                    "Date": d,
                    "Sales": 100.0 + i,
                    "Open": 1,
                    "Promo": int(i in promo_days),
                    "StateHoliday": 1 if i == holiday_day else 0,
                    "SchoolHoliday": 0,
                }
            )
    train = pd.DataFrame(rows)
    train["Date"] = train["Date"].to_numpy().astype("datetime64[D]")
    stores = (
        stores
        if stores is not None
        else pd.DataFrame(
            {
                "Store": [1, 2],
                "StoreType": ["a", "b"],
                "Assortment": ["a", "a"],
                "Promo2": [0, 1],
                "PromoInterval": ["", "Jan,Apr,Jul,Oct"],
                "Promo2SinceWeek": [np.nan, 1.0],
                "Promo2SinceYear": [np.nan, 2015.0],
            }
        )
    )
    return build_cube(train, stores, spec)


def dense(cube, group_prefix):
    """Decode the slots into a dense (S, T, F) matrix and keep the columns named with the prefix."""
    design = cube.design
    s, t, k = design.index.shape
    out = np.zeros((s, t, design.n_features))
    for slot in range(k):
        np.add.at(
            out, (np.arange(s)[:, None], np.arange(t)[None, :], design.index[:, :, slot]), design.value[:, :, slot]
        )
    cols = [i for i, n in enumerate(design.names) if n.startswith(group_prefix)]
    return out[:, :, cols], [design.names[i] for i in cols]


def test_holiday_window_marks_days_before_and_after():
    cube = _cube(FeatureSpec(holiday_window=True), holiday_day=10)
    x, names = dense(cube, "before_holiday")
    assert names == ["before_holiday_1", "before_holiday_2", "before_holiday_3"]
    assert x[0, 9, 0] == 1 and x[0, 8, 1] == 1 and x[0, 7, 2] == 1 and x[0, 6].sum() == 0
    after, _ = dense(cube, "after_holiday")
    assert after[0, 11, 0] == 1 and after[0, 13, 2] == 1 and after[0, 10].sum() == 0


def test_promo_window_and_promo_by_weekday():
    cube = _cube(FeatureSpec(promo_window=True, promo_weekday=True), promo_days=(5, 6, 7))
    x, names = dense(cube, "after_promo")
    assert x[0, 8, 0] == 1 and x[0, 9, 0] == 1 and x[0, 10, 0] == 0 and x[0, 6, 0] == 0
    before, _ = dense(cube, "before_promo")
    assert before[0, 3, 0] == 1 and before[0, 4, 0] == 1 and before[0, 2, 0] == 0
    by_day, names = dense(cube, "promo_x_")
    # 2015-01-06 (index 5) was a Tuesday
    assert by_day[0, 5, names.index("promo_x_Tue")] == 1 and by_day[0, 4].sum() == 0


def test_promo2_active_follows_interval_and_start():
    cube = _cube(FeatureSpec(promo2_active=True), days=70)
    x, _ = dense(cube, "promo2_active")
    jan = cube.dates < np.datetime64("2015-02-01")
    assert np.all(x[1, jan, 0] == 1) and np.all(x[1, ~jan, 0] == 0)  # Jan yes, Feb and Mar no
    assert np.all(x[0, :, 0] == 0)  # store 1 has no Promo2


def test_trend_is_zero_on_the_last_day_and_in_years():
    cube = _cube(FeatureSpec(trend=True), days=40)
    x, _ = dense(cube, "trend")
    assert x[0, -1, 0] == 0
    assert x[0, 0, 0] == pytest.approx(-39 / 365.25)


def test_day_of_month_and_month():
    cube = _cube(FeatureSpec(day_of_month=True, month=True), days=40)
    x, names = dense(cube, "day_")
    assert x[0, 0, names.index("day_1")] == 1 and x[0, 31, names.index("day_1")] == 1
    m, names = dense(cube, "month_")
    assert m[0, 31, names.index("month_Feb")] == 1


def test_with_spec_reencodes_without_touching_the_data():
    cube = _cube(FeatureSpec.reference())
    richer = cube.with_spec(replace(FeatureSpec.reference(), trend=True, day_of_month=True))
    assert richer.design.n_features == cube.design.n_features + 1 + 31
    np.testing.assert_array_equal(richer.sales, cube.sales)
    assert richer.fingerprint != cube.fingerprint
