"""Metrics against small hand-computed numbers; the arithmetic is written out next to each value."""

import json
import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from bhm_core.errors import ConfigError, DataError
from bhm_core.evaluation import metrics as M

# An empty or all-NaN selection must give NaN quietly: a warning here is a bug.
pytestmark = pytest.mark.filterwarnings("error")

NAN = float("nan")


# ---------------------------------------------------------------------------------------------
# Point metrics
# ---------------------------------------------------------------------------------------------

# Cells: (100, 110) (200, 150) (0, 5) (NaN, 50) (50, NaN). The last two are unscoreable;
# (0, 5) counts for mae/rmse/bias but not for the percentage errors.
Y = [100.0, 200.0, 0.0, NAN, 50.0]
YHAT = [110.0, 150.0, 5.0, 50.0, NAN]


def test_rmspe_and_mape_skip_zero_and_nan_cells():
    # Percentage errors: +10/100 = 0.1, -50/200 = -0.25.
    assert M.rmspe(Y, YHAT) == pytest.approx(math.sqrt((0.1**2 + 0.25**2) / 2))
    assert M.mape(Y, YHAT) == pytest.approx((0.1 + 0.25) / 2)


def test_mae_rmse_bias_include_zero_sales_cells():
    # Errors yhat - y over the three scoreable cells: +10, -50, +5.
    assert M.mae(Y, YHAT) == pytest.approx((10 + 50 + 5) / 3)
    assert M.rmse(Y, YHAT) == pytest.approx(math.sqrt((100 + 2500 + 25) / 3))
    assert M.bias(Y, YHAT) == pytest.approx((10 - 50 + 5) / 3)


def test_all_zero_sales_gives_nan_percentage_errors_but_finite_mae():
    y, yhat = [0.0, 0.0], [1.0, 3.0]
    assert math.isnan(M.rmspe(y, yhat))
    assert math.isnan(M.mape(y, yhat))
    assert M.mae(y, yhat) == pytest.approx(2.0)


@pytest.mark.parametrize("fn", [M.rmspe, M.mape, M.mae, M.rmse, M.bias])
@pytest.mark.parametrize("y, yhat", [([], []), ([NAN, 1.0], [1.0, NAN])], ids=["empty", "all-nan"])
def test_nothing_to_score_is_nan(fn, y, yhat):
    value = fn(y, yhat)
    assert isinstance(value, float) and math.isnan(value)


def test_scalar_forecast_broadcasts_and_shape_mismatch_is_data_error():
    assert M.mae([1.0, 3.0], 2.0) == pytest.approx(1.0)
    with pytest.raises(DataError, match=r"\(3,\).*\(2,\)"):
        M.mae([1.0, 2.0, 3.0], [1.0, 2.0])


def test_non_numeric_input_is_data_error():
    with pytest.raises(DataError, match="numeric"):
        M.mae(["a", "b"], [1.0, 2.0])


# ---------------------------------------------------------------------------------------------
# Intervals and quantiles
# ---------------------------------------------------------------------------------------------


def test_coverage_endpoints_are_inclusive():
    y = [1.0, 2.0, 3.0, 4.0, NAN]
    lo = [1.0, 0.0, 3.5, 0.0, 0.0]  # 1 on lo: in; 2 on hi: in; 3 below: out; 4 above: out
    hi = [2.0, 2.0, 4.0, 3.9, 1.0]
    assert M.coverage(y, lo, hi) == pytest.approx(2 / 4)


def test_coverage_and_width_empty():
    assert math.isnan(M.coverage([], [], []))
    assert math.isnan(M.interval_width([], []))


def test_interval_width_ignores_nan_bounds():
    assert M.interval_width([1.0, 0.0, NAN], [2.0, 3.9, 5.0]) == pytest.approx((1.0 + 3.9) / 2)


def test_pinball_hand_values():
    # q = 0.9: y - q_pred = -2 -> 0.1 * 2 = 0.2; y - q_pred = 5 -> 0.9 * 5 = 4.5.
    assert M.pinball([10.0, 20.0], [12.0, 15.0], 0.9) == pytest.approx((0.2 + 4.5) / 2)
    assert math.isnan(M.pinball([], [], 0.5))


def test_pinball_at_median_is_half_mae():
    rng = np.random.default_rng(0)
    y, yhat = rng.normal(size=200), rng.normal(size=200)
    assert M.pinball(y, yhat, 0.5) == pytest.approx(M.mae(y, yhat) / 2)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_pinball_quantile_outside_unit_interval_is_rejected(q):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        M.pinball([1.0], [1.0], q)


def test_interval_score_hand_values():
    # 80% interval [1, 10], alpha = 0.2 so a miss costs 2 / 0.2 = 10 per unit: width 9 each,
    # plus 0 (y=5 inside), 10 * 1 (y=0 below), 10 * 2 (y=12 above).
    assert M.interval_score([5.0, 0.0, 12.0], 1.0, 10.0, 80) == pytest.approx((9 + 19 + 29) / 3)


# ---------------------------------------------------------------------------------------------
# CRPS from samples
# ---------------------------------------------------------------------------------------------


def _crps_brute_force(y, samples):
    out = []
    for yi, row in zip(y, samples):
        m = len(row)
        first = sum(abs(x - yi) for x in row) / m
        second = sum(abs(a - b) for a in row for b in row) / m**2
        out.append(first - 0.5 * second)
    return np.array(out)


def test_crps_hand_values():
    # Samples {0, 1} at y = 0: empirical CDF is 1/2 on [0, 1), so CRPS = 1 * (1/2)^2 = 0.25.
    # Samples {3, 1, 2} at y = 2: CDF 1/3 on [1, 2), 2/3 on [2, 3): (1/3)^2 + (1/3)^2 = 2/9.
    # Each row repeats its values (both rows need m = 6), which leaves the distribution unchanged.
    got = M.crps_from_samples([0.0, 2.0], [[0.0, 1.0, 0.0, 1.0, 0.0, 1.0], [3.0, 1.0, 2.0, 3.0, 1.0, 2.0]])
    np.testing.assert_allclose(got, [0.25, 2 / 9])


def test_crps_of_point_mass_is_absolute_error():
    y = np.array([0.0, 2.5, -1.0, 7.0])
    c = np.array([1.0, 2.5, 3.0, -2.0])
    samples = np.repeat(c[:, None], 17, axis=1)
    np.testing.assert_allclose(M.crps_from_samples(y, samples), np.abs(y - c), atol=1e-12)


def test_crps_matches_brute_force_double_loop(monkeypatch):
    # A tiny block size forces several blocks, including a short last one.
    monkeypatch.setattr(M, "_CRPS_BLOCK_ELEMENTS", 3 * 13)
    rng = np.random.default_rng(42)
    y = rng.normal(size=10) * 3
    samples = rng.gamma(2.0, 2.0, size=(10, 13)) - 2.0
    np.testing.assert_allclose(M.crps_from_samples(y, samples), _crps_brute_force(y, samples), rtol=1e-12)


def test_crps_of_standard_normal_at_zero_approaches_closed_form():
    # CRPS(N(0,1), 0) = 2 phi(0) - 1/sqrt(pi) = sqrt(2/pi) - 1/sqrt(pi) ~= 0.2337.
    expected = math.sqrt(2 / math.pi) - 1 / math.sqrt(math.pi)
    samples = np.random.default_rng(7).standard_normal((1, 200_000))
    assert M.crps_from_samples([0.0], samples)[0] == pytest.approx(expected, abs=3e-3)


def test_crps_nan_cells_and_empty_input():
    got = M.crps_from_samples([NAN, 0.0, 0.0], [[1.0, 2.0], [1.0, NAN], [0.0, 0.0]])
    assert np.isnan(got[:2]).all() and got[2] == 0.0
    assert M.crps_from_samples([], np.empty((0, 5))).shape == (0,)
    assert np.isnan(M.crps_from_samples([1.0], np.empty((1, 0)))).all()


def test_crps_shape_mismatch_is_data_error():
    with pytest.raises(DataError, match=r"\(n, m\)"):
        M.crps_from_samples([1.0, 2.0], np.zeros((3, 4)))


def test_crps_large_float32_input_stays_within_bounded_memory():
    n, m = 50_000, 500
    rng = np.random.default_rng(1)
    samples = rng.standard_normal((n, m), dtype=np.float32)  # 100 MB
    y = rng.standard_normal(n)
    tracemalloc.start()
    try:
        got = M.crps_from_samples(y, samples)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.shape == (n,) and np.isfinite(got).all()
    # Well under one float64 copy of the input (200 MB): the work is done block by block.
    assert peak < 64 * 2**20
    np.testing.assert_allclose(got[:3], _crps_brute_force(y[:3], samples[:3].astype(np.float64)), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Frame level
# ---------------------------------------------------------------------------------------------


def _two_method_frame():
    """'model' has 50/80 intervals and crps; 'naive' has the columns but all NaN."""
    dates = pd.to_datetime(["2015-07-01", "2015-07-02", "2015-07-01", "2015-07-02"])
    model = pd.DataFrame(
        {
            "store": [1, 1, 2, 2],
            "date": dates,
            "method": "model",
            "y": [100.0, 0.0, 50.0, NAN],
            "point": [90.0, 10.0, 60.0, 70.0],
            "lo_50": [85.0, 0.0, 55.0, 60.0],
            "hi_50": [95.0, 20.0, 65.0, 80.0],
            "lo_80": [80.0, 0.0, 45.0, 50.0],
            "hi_80": [100.0, 30.0, 75.0, 90.0],
            "crps": [4.0, 3.0, 5.0, 9.0],
        }
    )
    naive = model.assign(method="naive", point=[100.0, 0.0, 40.0, 80.0])
    naive.loc[:, ["lo_50", "hi_50", "lo_80", "hi_80", "crps"]] = NAN
    return pd.concat([model, naive], ignore_index=True)


def test_score_two_methods_hand_values():
    table = M.score(_two_method_frame()).set_index("method")
    assert list(table.index) == ["model", "naive"]

    model = table.loc["model"]
    # Scored cells (y, point): (100, 90) (0, 10) (50, 60); the y = NaN cell is dropped.
    assert model["n_cells"] == 3
    assert model["rmspe"] == pytest.approx(math.sqrt((0.1**2 + 0.2**2) / 2))
    assert model["mape"] == pytest.approx((0.1 + 0.2) / 2)
    assert model["mae"] == pytest.approx(10.0)
    assert model["rmse"] == pytest.approx(10.0)
    assert model["bias"] == pytest.approx((-10 + 10 + 10) / 3)
    # 50%: 100 not in [85, 95], 0 in [0, 20] (endpoint), 50 not in [55, 65].
    assert model["coverage_50"] == pytest.approx(1 / 3)
    assert model["width_50"] == pytest.approx((10 + 20 + 10) / 3)
    # 80%: 100 in [80, 100] (endpoint), 0 in [0, 30] (endpoint), 50 in [45, 75].
    assert model["coverage_80"] == pytest.approx(1.0)
    assert model["width_80"] == pytest.approx((20 + 30 + 30) / 3)
    # Pinball at q = .25/.75 (50%) and .1/.9 (80%), summed per cell:
    #   y=100: .25*15 + .75*5 + .1*20 + 0     = 9.5
    #   y=0:   0 + .25*20 + 0 + .1*30         = 8.0
    #   y=50:  .75*5 + .25*15 + .1*5 + .1*25  = 10.5   -> 28 over 12 endpoint losses.
    assert model["pinball"] == pytest.approx(28 / 12)
    assert model["crps"] == pytest.approx((4 + 3 + 5) / 3)

    naive = table.loc["naive"]
    # Scored cells: (100, 100) (0, 0) (50, 40).
    assert naive["n_cells"] == 3
    assert naive["rmspe"] == pytest.approx(math.sqrt((0.0 + 0.2**2) / 2))
    assert naive["mape"] == pytest.approx(0.1)
    assert naive["mae"] == pytest.approx(10 / 3)
    assert naive["rmse"] == pytest.approx(math.sqrt(100 / 3))
    assert naive["bias"] == pytest.approx(-10 / 3)
    for col in ["coverage_50", "width_50", "coverage_80", "width_80", "pinball", "crps"]:
        assert math.isnan(naive[col]), col


def test_score_columns_follow_the_frame():
    frame = _two_method_frame().drop(columns=["lo_80", "hi_80", "crps"])
    table = M.score(frame)
    assert list(table.columns) == [
        "method",
        "rmspe",
        "mape",
        "mae",
        "rmse",
        "bias",
        "n_cells",
        "coverage_50",
        "width_50",
        "pinball",
    ]
    bare = M.score(frame.drop(columns=["lo_50", "hi_50"]))
    assert list(bare.columns) == ["method", "rmspe", "mape", "mae", "rmse", "bias", "n_cells"]


def test_score_levels_argument_restricts_intervals():
    table = M.score(_two_method_frame(), levels=(80,))
    assert "coverage_80" in table.columns and "coverage_50" not in table.columns


def test_score_by_store_and_method_ignores_frame_index():
    frame = _two_method_frame()
    frame.index = [0] * len(frame)  # duplicate labels must not disturb grouping
    table = M.score(frame, by=("store", "method"))
    assert list(zip(table["store"], table["method"])) == [(1, "model"), (1, "naive"), (2, "model"), (2, "naive")]
    # Store 2 'model': only (50, 60) is scored.
    row = table[(table["store"] == 2) & (table["method"] == "model")].iloc[0]
    assert row["n_cells"] == 1 and row["mae"] == pytest.approx(10.0)


def test_score_empty_frame_gives_no_rows():
    table = M.score(_two_method_frame().iloc[:0])
    assert len(table) == 0
    assert {"method", "rmspe", "n_cells", "coverage_80", "crps"} <= set(table.columns)


@pytest.mark.parametrize("column", ["store", "date", "method", "y", "point"])
def test_score_missing_required_column_names_it(column):
    with pytest.raises(DataError, match=f"missing required column.*{column}"):
        M.score(_two_method_frame().drop(columns=[column]))


def test_score_missing_group_column_names_it():
    with pytest.raises(DataError, match="region"):
        M.score(_two_method_frame(), by=("region",))


def test_score_half_an_interval_is_data_error():
    with pytest.raises(DataError, match="'lo_80' but not 'hi_80'"):
        M.score(_two_method_frame().drop(columns=["hi_80"]))


def test_score_non_numeric_actuals_is_data_error():
    frame = _two_method_frame().assign(y="lots")
    with pytest.raises(DataError, match="'y' must be numeric"):
        M.score(frame)


def test_score_rejects_fractional_level():
    with pytest.raises(ConfigError, match="97.5"):
        M.score(_two_method_frame(), levels=(97.5,))


def test_score_dict_drops_nan_and_is_json_ready():
    result = M.score_dict(_two_method_frame())
    assert set(result) == {"model", "naive"}
    assert {"rmspe", "mape", "mae", "rmse", "bias", "coverage_50", "coverage_80", "crps", "pinball"} <= set(
        result["model"]
    )
    assert set(result["naive"]) == {"rmspe", "mape", "mae", "rmse", "bias", "n_cells"}
    assert result["naive"]["mae"] == pytest.approx(10 / 3)
    assert all(type(v) is float for metrics in result.values() for v in metrics.values())
    assert json.loads(json.dumps(result)) == result


def test_per_store_rmspe():
    table = M.per_store(_two_method_frame())
    assert list(table.columns) == ["store", "method", "rmspe"]
    # model: store 1 -> only (100, 90) has y > 0: 0.1; store 2 -> (50, 60): 0.2.
    # naive: store 1 -> (100, 100): 0;            store 2 -> (50, 40): 0.2.
    np.testing.assert_allclose(table["rmspe"], [0.1, 0.0, 0.2, 0.2])
    assert list(table["method"]) == ["model", "naive", "model", "naive"]


def test_per_store_unknown_or_unavailable_metric():
    with pytest.raises(ConfigError, match="unknown metric 'wape'"):
        M.per_store(_two_method_frame(), metric="wape")
    with pytest.raises(DataError, match="coverage_80"):
        M.per_store(_two_method_frame().drop(columns=["lo_80", "hi_80"]), metric="coverage_80")


def test_forecast_schema_constants():
    assert M.INTERVAL_LEVELS == (50, 80, 90, 95)
    assert M.FORECAST_COLUMNS[:5] == ("store", "date", "method", "y", "point")
    assert {"lo_50", "hi_95", "crps"} <= set(M.FORECAST_COLUMNS)


def test_rmspe_uses_the_forecasters_rmspe_point_where_given():
    frame = pd.DataFrame(
        {
            "store": [1, 1, 2],
            "date": pd.to_datetime(["2015-01-01"] * 3),
            "method": ["m", "m", "b"],
            "y": [100.0, 200.0, 100.0],
            "point": [110.0, 220.0, 120.0],
            "point_rmspe": [100.0, 180.0, np.nan],
        }
    )
    scores = M.score_dict(frame)
    assert scores["m"]["rmspe"] == pytest.approx(np.sqrt((0.0 + 0.1**2) / 2))
    assert scores["m"]["mae"] == pytest.approx(15.0)  # other metrics keep the plain point
    assert scores["b"]["rmspe"] == pytest.approx(0.2)  # no rmspe point: falls back to `point`
