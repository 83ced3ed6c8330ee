"""The peers a practitioner would compare against: the global LightGBM model and the legacy
per-store regression with the reference features."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.evaluation.baselines import FRAME_COLUMNS, legacy_ols
from bhm_core.evaluation.metrics import score_dict

pytest.importorskip("lightgbm")


@pytest.fixture(scope="module")
def split():
    cube = load_dataset(DemoSource(n_stores=24, n_days=500, seed=6)).cube()
    cutoff = cube.dates[-43]
    sub = cube.with_origin(cutoff)
    return sub.select_days(None, cutoff), sub.select_days(cutoff + np.timedelta64(1, "D"), None)


@pytest.fixture(scope="module")
def gbm_frame(split):
    from bhm_core.evaluation.gbm import gbm

    return gbm(*split)


def test_gbm_frame_has_the_baseline_columns_and_closed_days_at_zero(split, gbm_frame):
    horizon = split[1]
    assert list(gbm_frame.columns) == list(FRAME_COLUMNS) and len(gbm_frame) == horizon.n_stores * horizon.n_days
    assert (gbm_frame.loc[~gbm_frame["open"], "point"] == 0).all()
    open_ = gbm_frame[gbm_frame["open"]]
    assert (open_["lo_90"] <= open_["lo_50"]).all() and (open_["lo_50"] <= open_["hi_50"]).all()
    assert (open_["hi_50"] <= open_["hi_90"]).all() and (open_["point_rmspe"] < open_["point"]).all()


def test_gbm_is_accurate_and_its_conformal_intervals_hold_on_the_models_own_data(gbm_frame):
    scores = score_dict(gbm_frame[gbm_frame["y"].notna()])["gbm"]
    assert scores["rmspe"] < 0.2
    assert 0.40 <= scores["coverage_50"] <= 0.60 and 0.84 <= scores["coverage_90"] <= 0.96


def test_gbm_never_reads_the_horizons_sales(split, gbm_frame):
    from bhm_core.evaluation.gbm import gbm

    train, horizon = split
    scrambled = replace(horizon, sales=horizon.sales[:, ::-1].copy())
    again = gbm(train, scrambled)
    np.testing.assert_allclose(again["point"], gbm_frame["point"])


def test_legacy_ols_recovers_noise_free_log_linear_sales_with_the_reference_features():
    cube = load_dataset(DemoSource(n_stores=5, n_days=300, seed=2)).cube(FeatureSpec.reference())
    rng = np.random.default_rng(0)
    theta = rng.normal(0, 0.2, (cube.n_stores, cube.design.n_features)) + 8.0 * (np.arange(cube.design.n_features) < 7)
    from bhm_core.model.hierarchy import grid_linear_predictor

    sales = np.exp(grid_linear_predictor(theta, cube.design.index, cube.design.value)).astype(np.float32)
    exact = replace(cube, sales=np.where(cube.observed, sales, 0).astype(np.float32))
    train, horizon = exact.select_days(None, exact.dates[-31]), exact.select_days(exact.dates[-30], None)
    frame = legacy_ols(train, horizon)
    seen = frame[frame["y"].notna()]
    np.testing.assert_allclose(seen["median"], seen["y"], rtol=1e-4)
    assert isinstance(frame, pd.DataFrame) and set(frame["method"]) == {"legacy_ols"}


def test_gbm_coldstart_learns_the_new_stores_from_their_known_days_only():
    from bhm_core.evaluation.coldstart import _peer_pool, known_windows
    from bhm_core.evaluation.gbm import gbm_coldstart

    cube = load_dataset(DemoSource(n_stores=16, n_days=240, seed=6)).cube()
    new, others = cube.store_ids[:3], cube.store_ids[3:]
    windows = known_windows(cube, new, 7, 21)
    last = max(w.last_known for w in windows)

    def run(source):
        horizons = [
            source.select_stores(new).select_days(last + np.timedelta64(1, "D"), last + np.timedelta64(21, "D"))
        ]
        return gbm_coldstart(_peer_pool(source, others, windows), horizons)[0]

    frame = run(cube)
    assert list(frame.columns) == list(FRAME_COLUMNS) and len(frame) == 3 * 21
    assert set(frame["store"]) == set(new.tolist()) and (frame["method"] == "gbm").all()
    scored = frame[frame["y"].notna()]
    assert len(scored) > 0 and (scored["point"] > 0).all()
    # Scrambling the new stores' sales after their known days changes the actuals, not the forecast.
    rows = cube.store_rows(new)
    later = np.zeros(cube.sales.shape, bool)
    later[rows] = cube.dates[None, :] > last
    scrambled = replace(cube, sales=np.where(later, cube.sales * 3 + 17, cube.sales).astype(cube.sales.dtype))
    again = run(scrambled)
    np.testing.assert_allclose(again["point"], frame["point"])
    assert not np.allclose(again["y"].fillna(0), frame["y"].fillna(0))


def test_gbm_rmspe_point_is_not_moved_by_one_anomalous_validation_day():
    from bhm_core.evaluation.gbm import rmspe_shift

    residuals = np.random.default_rng(0).normal(0.0, 0.1, 20_000)
    # Normal residuals: log E[e^-r] / E[e^-2r] = -1.5 sd^2 (the log-normal's RMSPE point).
    assert rmspe_shift(residuals) == pytest.approx(-1.5 * 0.1**2, abs=2e-3)
    # One store-day at 1 % of its usual sales (log error -4.6) leaves it where it was.
    assert rmspe_shift(np.append(residuals, np.log(0.01))) == pytest.approx(rmspe_shift(residuals), abs=1e-3)
