"""The per-store yearly profile: what it holds, and that it never looks past the trend's origin."""

import numpy as np
import pandas as pd

from bhm_core.data.calendar import SEASON_WEEKS, week_of_year
from bhm_core.data.cube import SEASON_MIN_DAYS, build_cube, season_profile
from bhm_core.data.features import FeatureSpec


def _cube(days=800, amplitude=(0.3, 0.0), spec=None):
    dates = pd.date_range("2013-01-01", periods=days)
    doy = dates.day_of_year.to_numpy()
    rows = []
    for store, amp in zip((1, 2), amplitude):
        sales = 1000 * np.exp(amp * np.sin(2 * np.pi * doy / 365.25) + 0.1 * (dates.day_of_week.to_numpy() == 5))
        rows.append(
            pd.DataFrame(
                {
                    "Store": store,
                    "Date": dates,
                    "Sales": sales,
                    "Open": 1,
                    "Promo": 0,
                    "StateHoliday": 0,
                    "SchoolHoliday": 0,
                }
            )
        )
    train = pd.concat(rows, ignore_index=True)
    train["Date"] = train["Date"].to_numpy().astype("datetime64[D]")
    stores = pd.DataFrame({"Store": [1, 2], "StoreType": ["a", "a"], "Assortment": ["a", "a"], "Promo2": [0, 0]})
    return build_cube(train, stores, spec or FeatureSpec(season=True))


def test_profile_follows_a_yearly_wave_and_is_centred():
    cube = _cube()
    profile = cube.covariates.season
    assert profile.shape == (2, SEASON_WEEKS)
    mid_week = (np.arange(SEASON_WEEKS) * 7 + 3.5) / 365.25
    wave = 0.3 * np.sin(2 * np.pi * mid_week)
    assert np.corrcoef(profile[0, :-2], wave[:-2])[0, 1] > 0.95  # the December run is left out
    assert abs(profile[0].mean()) < 0.02
    assert np.abs(profile[1]).max() < 0.02  # a flat store has a flat profile (the weekday is removed)


def test_feature_reads_the_profile_without_the_days_own_year_and_the_full_one_after_the_origin():
    cube = _cube().with_origin(_cube().dates[600])
    cov = cube.covariates
    col = cube.feature_names.index("season_profile")
    slot = int(np.flatnonzero(cube.design.index[0, 0] == col)[0])
    value = cube.design.value[0, :, slot]
    week = week_of_year(cube.dates)
    year = np.searchsorted(cov.season_years, cube.dates.astype("datetime64[Y]").astype(np.int64) + 1970)
    training = cube.dates <= cube.dates[600]
    np.testing.assert_allclose(value[training], cov.season_left_out[0, year, week][training])
    np.testing.assert_allclose(value[~training], cov.season[0, week][~training])
    # each year's left-out profile still follows the wave where the other years saw the week
    assert cov.season_left_out.shape == (2, len(cov.season_years), SEASON_WEEKS)
    for y in range(len(cov.season_years)):
        seen = cov.season_left_out[0, y] != 0
        seen[-2:] = False  # the December run is left out
        assert np.corrcoef(cov.season_left_out[0, y, seen], cov.season[0, seen])[0, 1] > 0.9


def test_profile_never_uses_days_after_the_origin():
    cube = _cube()
    cutoff = cube.dates[500]
    moved = cube.with_origin(cutoff)
    train = cube.select_days(None, cutoff)
    expected = season_profile(train.sales, train.observed, train.covariates, cutoff)
    np.testing.assert_allclose(moved.covariates.season, expected.all, atol=1e-6)
    changed = cube.sales.copy()
    changed[:, 501:] *= 3.0
    again = season_profile(changed, cube.observed, cube.covariates, cutoff)
    np.testing.assert_allclose(again.all, moved.covariates.season, atol=1e-6)
    np.testing.assert_allclose(again.left_out, moved.covariates.season_left_out, atol=1e-6)


def test_short_history_gives_the_fallback_profile():
    cube = _cube(days=SEASON_MIN_DAYS - 10)
    assert not cube.covariates.season.any()  # no store has a history: no population profile either
    full = _cube()
    fallback = np.linspace(-0.1, 0.1, SEASON_WEEKS)
    short = full.with_origin(np.array([full.dates[100], full.dates[-1]]), season_fallback=fallback)
    np.testing.assert_allclose(short.covariates.season[0], fallback, atol=1e-6)
    np.testing.assert_allclose(short.covariates.season[1], full.covariates.season[1], atol=1e-6)
    default = full.with_origin(np.array([full.dates[100], full.dates[-1]]))
    np.testing.assert_allclose(default.covariates.season[0], full.covariates.season[1], atol=1e-6)


def test_competition_since_parses_month_and_year():
    from bhm_core.data.cube import _competition_since

    stores = pd.DataFrame(
        {"CompetitionOpenSinceMonth": [9, np.nan, 13.0], "CompetitionOpenSinceYear": [2014, 2010, 2014]}
    )
    since = _competition_since(stores)
    assert since[0] == np.datetime64("2014-09-01") and np.isnat(since[1]) and np.isnat(since[2])
