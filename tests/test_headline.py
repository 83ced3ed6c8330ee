"""The headline's context: the lift's spread over stores and the cases where pooling pays."""

from __future__ import annotations

import numpy as np
import pytest

from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.evaluation import headline
from bhm_core.evaluation.backtest import backtest
from bhm_core.evaluation.tables import best_baseline, lift_percent
from bhm_core.model.config import FitConfig


@pytest.fixture(scope="module")
def run():
    cube = load_dataset(DemoSource(n_stores=40, n_days=500, seed=5)).cube()
    cutoff = str(cube.dates[-43])
    evaluation = backtest(cube, cutoff, 42, stores=list(cube.store_ids[:24]), config=FitConfig(steps=60), n_samples=200)
    return cube, cutoff, evaluation


def test_the_headline_row_is_the_run_s_lift_and_its_interval_holds_it(run):
    cube, cutoff, evaluation = run
    cases = headline.pooling_cases(evaluation.summary, evaluation.forecasts, cube, cutoff)
    best, best_rmspe = best_baseline(evaluation.summary)
    first = cases.iloc[0]
    assert first["case"] == "All scored store-days"
    assert first["lift_pct"] == pytest.approx(lift_percent(evaluation.summary["model"]["rmspe"], best_rmspe), abs=1e-6)
    lo, hi = headline.lift_interval(evaluation.forecasts, best)
    assert lo < first["lift_pct"] < hi and hi - lo < 30


def test_cases_are_the_subsets_they_name(run):
    cube, cutoff, evaluation = run
    cases = headline.pooling_cases(evaluation.summary, evaluation.forecasts, cube, cutoff).set_index("case")
    history = cube.observed[:, cube.dates <= np.datetime64(cutoff)].sum(1)
    short = set(cube.store_ids[history < headline.SHORT_HISTORY_DAYS].tolist()) & set(cube.store_ids[:24].tolist())
    if short:
        assert cases.loc["Stores with little history", "stores"] == len(short)
    else:
        assert "Stores with little history" not in cases.index
    assert (cases["store_days"] <= cases.loc["All scored store-days", "store_days"]).all()


def test_intervals_and_the_strongest_peer(run):
    _, _, evaluation = run
    intervals = headline.intervals_case(evaluation.summary)
    assert intervals is not None and 0.5 < intervals["model_coverage_90"] <= 1.0
    peer = headline.peer_case(evaluation.summary)
    assert peer is not None and peer["baseline"] == "gbm" and peer["baseline_rmspe"] > 0
