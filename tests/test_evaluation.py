"""Evaluation layer: baselines by hand, the backtest and cold-start summaries, the command line."""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

from bhm_core.cli import main
from bhm_core.data.cube import build_cube
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.data.validate import default_stores
from bhm_core.errors import ConfigError, DataError
from bhm_core.evaluation.backtest import backtest, choose_stores
from bhm_core.evaluation.baselines import (
    BASELINES,
    COLDSTART_BASELINES,
    FRAME_COLUMNS,
    crps_lognormal,
    mean,
    median_dow_promo,
    ols_log,
    pooled,
    seasonal_naive,
)
from bhm_core.evaluation.coldstart import coldstart_trial
from bhm_core.evaluation.metrics import crps_from_samples, score_dict
from bhm_core.evaluation.tables import METRIC_KEYS, error_sources
from bhm_core.forecast.summaries import rmspe_optimal_point
from bhm_core.model.config import FitConfig

REPO = Path(__file__).resolve().parents[1]
FAST = FitConfig(steps=100, chunk_steps=50)
MONDAY = np.datetime64("2015-01-05", "D")


def tiny_cube(sales: dict, n_days: int, *, promo=None, closed=()):
    """Hand-made cube: sales {store: (n_days,) array}, every day a row; `closed` (store, day) pairs."""
    frames = []
    for store, values in sales.items():
        is_open = np.ones(n_days, np.int8)
        for s, d in closed:
            if s == store:
                is_open[d] = 0
        frames.append(
            pd.DataFrame(
                {
                    "Store": store,
                    "Date": MONDAY + np.arange(n_days),
                    "Open": is_open,
                    "Sales": np.where(is_open == 1, np.asarray(values, float), 0.0),
                    "Promo": np.zeros(n_days, np.int8) if promo is None else np.asarray(promo, np.int8),
                    "StateHoliday": np.zeros(n_days, np.int8),
                    "SchoolHoliday": np.zeros(n_days, np.int8),
                }
            )
        )
    train = pd.concat(frames, ignore_index=True)
    return build_cube(train, default_stores(np.array(sorted(sales))))


def split(cube, n_train):
    return cube.select_days(None, cube.dates[n_train - 1]), cube.select_days(cube.dates[n_train], None)


def points(frame, store=None):
    if store is not None:
        frame = frame[frame["store"] == store]
    return frame["point"].to_numpy()


# ---------------------------------------------------------------------------------------------
# baselines on hand-made cubes


def test_seasonal_naive_copies_last_week_and_skips_a_closed_day():
    cube = tiny_cube({1: 100.0 + np.arange(21)}, 21, closed=[(1, 13), (1, 20)])  # day 13: a Sunday
    train, horizon = split(cube, 14)
    frame = seasonal_naive(train, horizon)
    # Mon..Sat of week 3 = week 2's values; Sunday falls back to week 1 (day 6); day 20 closed -> 0.
    expected = np.array([107, 108, 109, 110, 111, 112, 0.0])
    np.testing.assert_allclose(points(frame), expected)
    assert np.isnan(frame["y"].iloc[-1]) and not frame["open"].iloc[-1]
    assert frame["lo_90"].isna().all() and frame["crps"].isna().all()


def test_median_by_weekday_and_promo_with_fallbacks():
    promo = np.repeat([1, 0, 1, 0, 1], 7)  # alternating promo weeks
    values = np.tile(np.arange(1.0, 8.0), 5) * 100 + np.repeat([10, 0, 30, 0, 0], 7)
    cube = tiny_cube({1: values}, 35, promo=promo)
    train, horizon = split(cube, 28)  # horizon: week 5, promo on
    frame = median_dow_promo(train, horizon)
    # promo weeks in training: weeks 1 and 3 -> median of +10 and +30 = +20 on each weekday.
    np.testing.assert_allclose(points(frame), np.arange(1.0, 8.0) * 100 + 20)
    # Only the last 7 days: week 4 has no promo day, so each weekday falls back to its plain median.
    recent = median_dow_promo(train, horizon, window=7)
    np.testing.assert_allclose(points(recent), np.arange(1.0, 8.0) * 100)


def test_median_falls_back_to_store_median_when_a_weekday_was_never_seen():
    values = np.full(14, 50.0)
    train = tiny_cube({1: values}, 14, closed=[(1, 6), (1, 13)])  # never open on Sundays
    horizon = tiny_cube({1: np.full(7, 1.0)}, 7)  # open on the Sunday
    frame = median_dow_promo(train, horizon)
    np.testing.assert_allclose(points(frame), 50.0)


def test_mean_of_known_days():
    cube = tiny_cube({1: [10, 20, 30, 40, 50, 60, 70, 1, 1], 2: [5] * 9}, 9, closed=[(1, 2)])
    train, horizon = split(cube, 7)
    frame = mean(train, horizon)
    np.testing.assert_allclose(points(frame, 1), (10 + 20 + 40 + 50 + 60 + 70) / 6)
    np.testing.assert_allclose(points(frame, 2), 5.0)


def _log_linear_cube(n_days=70):
    weekday = np.array([8.0, 8.1, 8.2, 8.0, 8.3, 8.5, 7.5])
    promo = np.tile(np.repeat([1, 0], 7), n_days // 14 + 1)[:n_days]
    dow = np.arange(n_days) % 7
    sales = {1: np.exp(weekday[dow] + 0.3 * promo), 2: np.exp(weekday[dow] - 1.0 + 0.3 * promo)}
    return tiny_cube(sales, n_days, promo=promo), sales


def test_ols_log_recovers_noise_free_log_linear_sales():
    cube, sales = _log_linear_cube()
    train, horizon = split(cube, 56)
    frame = ols_log(train, horizon, penalty=1e-6)
    for store in (1, 2):
        np.testing.assert_allclose(points(frame, store), sales[store][56:], rtol=1e-4)
    # Pooling both stores into one regression cannot give them different levels.
    both = pooled(train, horizon)
    np.testing.assert_allclose(points(both, 1), points(both, 2))


def test_ols_log_is_well_posed_with_more_features_than_days():
    cube, sales = _log_linear_cube()
    train, horizon = split(cube, 3)  # 3 days, 15 features
    frame = ols_log(train, horizon, penalty=7.0)
    assert np.isfinite(frame["point"]).all() and np.isfinite(frame["hi_95"]).all()
    # Shrunk toward the store's own mean level: forecasts stay within the range of the known days.
    for store in (1, 2):
        known = sales[store][:3]
        assert known.min() * 0.5 < points(frame, store).min() <= points(frame, store).max() < known.max() * 2


def test_lognormal_intervals_nest_and_crps_matches_sampled_crps():
    cube, _ = _log_linear_cube()
    train, horizon = split(cube, 56)
    frame = ols_log(train, horizon)
    for inner, outer in ((50, 80), (80, 90), (90, 95)):
        assert (frame[f"lo_{outer}"] <= frame[f"lo_{inner}"]).all()
        assert (frame[f"hi_{inner}"] <= frame[f"hi_{outer}"]).all()
    rng = np.random.default_rng(0)
    y = np.array([900.0, 1000.0, 2000.0])
    mu, sigma = np.log(1000.0), 0.2
    sampled = crps_from_samples(y, np.exp(rng.normal(mu, sigma, (3, 200_000))))
    np.testing.assert_allclose(crps_lognormal(y, mu, sigma), sampled, rtol=0.01)


def test_lognormal_baseline_is_scored_on_its_rmspe_optimal_point():
    cube, _ = _log_linear_cube()
    rng = np.random.default_rng(1)
    noisy = cube.sales * np.exp(rng.normal(0, 0.2, cube.sales.shape))
    cube = replace(cube, sales=np.where(cube.observed, noisy, 0).astype(cube.sales.dtype))
    train, horizon = split(cube, 56)
    frame = ols_log(train, horizon)
    sigma = np.log(frame["hi_50"] / frame["point"]) / ndtri(0.75)
    # The same decision the model's sampled point takes, E[1/y] / E[1/y^2], here in closed form.
    draws = np.exp(
        np.log(frame["point"].to_numpy()[:2, None]) + sigma.to_numpy()[:2, None] * rng.standard_normal((2, 400_000))
    )
    np.testing.assert_allclose(frame["point_rmspe"][:2], rmspe_optimal_point(draws, axis=1), rtol=5e-3)
    assert (frame["point_rmspe"] < frame["point"]).all()
    # Scoring uses it: RMSPE from the metrics equals the hand computation on point_rmspe.
    scored = frame[frame["y"] > 0]
    by_hand = np.sqrt(np.mean(((scored["point_rmspe"] - scored["y"]) / scored["y"]) ** 2))
    assert score_dict(frame)["ols_log"]["rmspe"] == pytest.approx(by_hand)


def test_every_baseline_returns_the_forecast_schema():
    cube, _ = _log_linear_cube()
    train, horizon = split(cube, 56)
    for name, fn in {**BASELINES, **COLDSTART_BASELINES}.items():
        frame = fn(train, horizon)
        assert tuple(frame.columns) == FRAME_COLUMNS, name
        assert len(frame) == horizon.n_stores * horizon.n_days
        assert frame["method"].nunique() == 1


def test_store_subset_is_seeded():
    cube = tiny_cube({s: np.ones(7) for s in range(1, 11)}, 7)
    a, b = choose_stores(cube, 4, seed=1), choose_stores(cube, 4, seed=1)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 4 and np.all(np.diff(a) > 0)
    with pytest.raises(ConfigError, match="1..10"):
        choose_stores(cube, 11)


# ---------------------------------------------------------------------------------------------
# backtest and cold start on the demo


@pytest.fixture(scope="module")
def demo_cube():
    # The command-line tests below use the same demo (--demo-stores 30 --demo-days 400, seed 0) and
    # settings, so in this process they reuse the programs these fixtures compiled.
    return load_dataset(DemoSource(n_stores=30, n_days=400, seed=0)).cube()


@pytest.fixture(scope="module")
def evaluation(demo_cube):
    return backtest(demo_cube, demo_cube.dates[330], 42, config=FAST, n_samples=200)


def _check_metrics(metrics, with_intervals):
    expected = set(METRIC_KEYS) if with_intervals else set(METRIC_KEYS) - {"coverage_50", "coverage_90", "crps"}
    assert set(metrics) == expected
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


def test_backtest_summary_has_every_field_with_its_type(evaluation, demo_cube):
    s = json.loads(json.dumps(evaluation.summary, allow_nan=False))
    assert list(s)[:11] == [
        "cutoff",
        "horizon",
        "n_stores",
        "n_scored_cells",
        "model",
        "baselines",
        "per_store",
        "fit_seconds",
        "compile_seconds",
        "steps",
        "final_loss",
    ]
    assert s["cutoff"] == str(demo_cube.dates[330]) and s["horizon"] == 42 and s["n_stores"] == 30
    assert isinstance(s["n_scored_cells"], int) and s["n_scored_cells"] > 0
    _check_metrics(s["model"], True)
    assert set(s["baselines"]) == {"gbm", "ols_log", "legacy_ols", "median_dow_promo", "seasonal_naive", "pooled"}
    for name, metrics in s["baselines"].items():
        _check_metrics(metrics, name in ("gbm", "ols_log", "legacy_ols", "pooled"))
    assert set(s["baseline_seconds"]) == set(s["baselines"])
    assert all(isinstance(v, float) and v >= 0 for v in s["baseline_seconds"].values())
    anomalies = s["anomalies"]  # every method's RMSPE with and without the anomalous actuals
    assert set(anomalies) == {"rule", "cells", "rmspe", "rmspe_without"}
    assert anomalies["rmspe"]["hierarchical"] == pytest.approx(s["model"]["rmspe"])
    for name, metrics in s["baselines"].items():
        assert anomalies["rmspe"][name] == pytest.approx(metrics["rmspe"])
    assert set(anomalies["rmspe_without"]) == {"hierarchical", *s["baselines"]}
    for key in ("fit_seconds", "compile_seconds", "final_loss"):
        assert isinstance(s[key], float)
    assert 0 <= s["compile_seconds"] <= s["fit_seconds"]
    assert s["steps"] == FAST.steps
    total = s["total"]  # the daily total over the 30 stores, on the 42 horizon days with sales
    assert set(total) == {"n_days", "coverage_50", "coverage_90", "rmspe"}
    assert 0 < total["n_days"] <= 42 and 0 <= total["coverage_50"] <= total["coverage_90"] <= 1
    assert total["rmspe"] > 0 and math.isfinite(total["rmspe"])
    best = min(s["baselines"], key=lambda k: s["baselines"][k]["rmspe"])
    assert len(s["per_store"]) == 30
    for entry in s["per_store"]:
        assert {"store", "rmspe", "baseline_rmspe", "baseline"} <= set(entry)
        assert isinstance(entry["store"], int) and entry["baseline"] == best


def test_backtest_scores_only_observed_horizon_days(evaluation, demo_cube):
    frame = evaluation.forecasts
    cutoff = demo_cube.dates[330]
    assert frame["date"].min() == pd.Timestamp(cutoff + 1)
    assert frame["date"].max() == pd.Timestamp(cutoff + 42)
    window = demo_cube.select_days(cutoff + 1, cutoff + 42)
    n_methods = 1 + len(BASELINES)
    assert len(frame) == n_methods * window.n_stores * window.n_days
    assert evaluation.summary["n_scored_cells"] == int(window.observed.sum())
    assert set(frame["method"]) == {"hierarchical", *BASELINES}
    model_columns = [c for c in frame.columns if c in FRAME_COLUMNS]
    assert model_columns == list(FRAME_COLUMNS)


def test_model_beats_seasonal_naive_on_the_demo(evaluation):
    s = evaluation.summary
    assert s["model"]["rmspe"] < s["baselines"]["seasonal_naive"]["rmspe"]
    assert s["model"]["rmspe"] < s["baselines"]["pooled"]["rmspe"]
    assert 0.3 < s["model"]["coverage_50"] < 0.8 and 0.75 < s["model"]["coverage_90"] <= 1.0


@pytest.mark.parametrize(
    "cutoff, horizon, words",
    [
        ("2012-12-31", 7, ["outside the data", "2013-01-01"]),
        ("2014-02-05", 7, ["outside the data"]),
        ("2014-01-20", 30, ["after the last day", "2014-01-05"]),
        ("2013-06-01", 0, ["horizon", ">= 1"]),
        ("June", 7, ["cutoff", "2015-06-19"]),
    ],
)
def test_backtest_rejects_bad_windows_before_fitting(demo_cube, cutoff, horizon, words):
    with pytest.raises(ConfigError) as info:
        backtest(demo_cube, cutoff, horizon, config=FAST)
    for word in words:
        assert word in str(info.value)


@pytest.fixture(scope="module")
def cold(demo_cube):
    return coldstart_trial(demo_cube, 5, 7, horizon=21, seed=2, config=FAST, n_samples=200)


def test_coldstart_summary_fields(cold, demo_cube):
    s = json.loads(json.dumps(cold.summary, allow_nan=False))
    assert s["known_days"] == 7 and s["horizon"] == 21 and s["n_stores"] == 5
    assert len(s["new_stores"]) == 5 and all(isinstance(i, int) for i in s["new_stores"])
    assert s["n_fit_stores"] == demo_cube.n_stores - 5
    np.testing.assert_array_equal(cold.fit.store_ids, np.setdiff1d(demo_cube.store_ids, s["new_stores"]))
    _check_metrics(s["model"], True)
    assert set(s["baselines"]) == {*COLDSTART_BASELINES, "gbm"}
    assert set(s["baseline_seconds"]) == set(s["baselines"])
    _check_metrics(s["baselines"]["gbm"], True)
    assert s["model"]["rmspe"] < s["baselines"]["mean"]["rmspe"]
    for key in ("fit_seconds", "compile_seconds", "final_loss"):
        assert isinstance(s[key], float)


def test_coldstart_forecasts_start_after_each_stores_kth_known_day(cold, demo_cube):
    frame = cold.forecasts[cold.forecasts["method"] == "hierarchical"]
    for entry in cold.summary["per_store"]:
        row = demo_cube.store_rows([entry["store"]])[0]
        days = np.flatnonzero(demo_cube.observed[row])
        assert entry["first_known"] == str(demo_cube.dates[days[0]])
        assert entry["last_known"] == str(demo_cube.dates[days[6]])
        dates = frame.loc[frame["store"] == entry["store"], "date"]
        assert dates.min() == pd.Timestamp(demo_cube.dates[days[6]] + 1) and len(dates) == 21
    # The local fit saw exactly K cells per new store.
    assert cold.local_fit.meta["n_cells"] == 5 * 7


@pytest.mark.parametrize(
    "n_new, k, words",
    [
        (30, 7, ["below the number of stores"]),
        (3, 5000, ["known days K = 5000", "choose K <="]),
        (3, 0, ["known days K", ">= 1"]),
    ],
)
def test_coldstart_rejects_impossible_trials(demo_cube, n_new, k, words):
    with pytest.raises(ConfigError) as info:
        coldstart_trial(demo_cube, n_new, k, config=FAST)
    for word in words:
        assert word in str(info.value)


# ---------------------------------------------------------------------------------------------
# command line


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "bhm_core", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_cli_backtest_json_on_a_small_demo():
    done = run_cli(
        "backtest",
        "--cutoff",
        "2013-04-01",
        "--horizon",
        "14",
        "--stores",
        "6",
        "--demo-stores",
        "10",
        "--demo-days",
        "120",
        "--steps",
        "30",
        "--samples",
        "50",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cutoff"] == "2013-04-01" and result["horizon"] == 14 and result["n_stores"] == 6
    assert set(result["baselines"]) == set(BASELINES) and result["steps"] == 30
    assert len(result["per_store"]) <= 6 and result["source"] == "demo"


def test_cli_coldstart_human_table(capsys, monkeypatch, cold):
    # In-process with the cold fixture's data and settings: no new compilation; the JAX cache
    # setting of this process stays as it is.
    monkeypatch.setattr("bhm_core.inference.programs.enable_compilation_cache", lambda *a, **k: None)
    code = main(
        [
            "coldstart",
            "--new-stores",
            "5",
            "--known-days",
            "7",
            "--horizon",
            "21",
            "--seed",
            "2",
            "--demo-stores",
            "30",
            "--demo-days",
            "400",
            "--steps",
            "100",
            "--samples",
            "200",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "cold start: 5 new stores, 7 known days" in out
    assert "new stores: " + " ".join(map(str, cold.summary["new_stores"])) in out
    for method in ("hierarchical", "ols_log", "mean", "median_dow_promo"):
        assert any(line.startswith(method) for line in out.splitlines()), method


def test_cli_error_exits_2_with_one_line_and_no_traceback():
    done = run_cli(
        "backtest", "--cutoff", "2030-01-01", "--horizon", "42", "--demo-stores", "10", "--demo-days", "200", "--json"
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr
    assert "outside the data" in lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        (["backtest", "--cutoff", "2013-06-01", "--horizon", "0"], ["horizon"]),
        (["backtest", "--cutoff", "2013-06-01", "--horizon", "7", "--stores", "11"], ["1..10"]),
        (["backtest", "--cutoff", "1-6-2013", "--horizon", "7"], ["cutoff must be a date"]),
        (["coldstart", "--new-stores", "3", "--known-days", "100000"], ["known days K = 100000"]),
    ],
)
def test_cli_errors_exit_2_before_fitting(capsys, args, words):
    assert main([*args, "--demo-stores", "10", "--demo-days", "200", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


def _panel_with_known_errors(level, shock, method="hierarchical"):
    """A forecast frame whose log errors log(y / point) are exactly level[store] + shock[day]."""
    stores, days = np.meshgrid(np.arange(len(level)), np.arange(len(shock)), indexing="ij")
    point = np.full(stores.size, 1000.0)
    y = point * np.exp(np.asarray(level)[stores.ravel()] + np.asarray(shock)[days.ravel()])
    dates = pd.Timestamp("2015-01-01") + pd.to_timedelta(days.ravel(), "D")
    return pd.DataFrame({"store": stores.ravel() + 1, "date": dates, "method": method, "y": y, "point": point})


def test_error_sources_split_store_levels_from_day_shocks():
    level, shock = np.array([0.2, -0.3]), np.array([0.1, -0.1])  # shocks with mean 0
    frame = _panel_with_known_errors(level, shock)
    sources = error_sources(frame)
    cells_level, cells_shock = np.repeat(level, 2), np.tile(shock, 2)

    def hand(log_error):
        return math.sqrt(np.mean((1 - np.exp(-log_error)) ** 2))

    assert sources["rmspe"] == pytest.approx(hand(cells_level + cells_shock))
    # Corrections are centred: the overall mean error (-0.05, from the levels) stays.
    assert sources["without_store_level"] == pytest.approx(hand(cells_shock + level.mean()))
    assert sources["without_day_shocks"] == pytest.approx(hand(cells_level))
    assert sources["without_both"] == pytest.approx(hand(np.full(4, level.mean())))
    assert sources["sd_store_level"] == pytest.approx(0.25)
    assert sources["sd_day_shocks"] == pytest.approx(0.1)
    assert sources["n_cells"] == 4


def test_error_sources_score_the_rmspe_point_and_only_positive_sales():
    frame = _panel_with_known_errors([0.1, 0.1], [0.0, 0.0, 0.0])
    frame["point_rmspe"] = frame["y"]  # a perfect RMSPE point
    frame.loc[0, "y"] = 0.0  # a closed day is not scored
    baseline = _panel_with_known_errors([0.0], [0.0], method="ols_log")
    sources = error_sources(pd.concat([frame, baseline.assign(point_rmspe=np.nan)], ignore_index=True))
    assert sources["rmspe"] == pytest.approx(0.0) and sources["n_cells"] == 5
    with pytest.raises(DataError, match="seasonal_naive"):
        error_sources(frame, "seasonal_naive")
