"""New stores under a frozen hierarchy: never clearly worse than a per-store regression on the same
known days, with forecasts whose mean stays finite and near the sales, even when the hierarchy rests
on a few stores that never showed some of the new stores' features (a Sunday opening, a holiday
opening, a store variant)."""

from __future__ import annotations

import numpy as np
import pytest

from bhm_core.data.cells import stores_per_feature
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.evaluation.coldstart import coldstart
from bhm_core.evaluation.plans import pooling_report
from bhm_core.inference.coldstart import MIN_POOL_STORES, pooled_hyper
from bhm_core.inference.fit import fit
from bhm_core.model import guide
from bhm_core.model.config import FitConfig

NOISE = 0.02  # RMSPE points a cold start may lose to the per-store regression by chance
# Hierarchies of a few demo stores and new stores whose features they lack: the first is the
# dashboard's case that scored 79 % RMSPE against 21 % for the per-store regression.
CASES = (
    ([2, 3, 4, 14, 19, 101, 150, 177], [198, 199, 200], 100),
    ([53, 99, 123, 163, 200], [4, 9, 15, 35, 61], 100),
)


@pytest.fixture(scope="module")
def demo_cube():
    return load_dataset(DemoSource()).cube()


@pytest.mark.parametrize(("hierarchy", "new", "steps"), CASES, ids=("8-stores", "5-stores"))
def test_cold_start_is_never_clearly_worse_than_the_per_store_regression(demo_cube, hierarchy, new, steps):
    config = FitConfig(steps=steps)
    chain = fit(demo_cube.select_stores(hierarchy), config)
    evaluation = coldstart(chain, demo_cube, new, 7, 28, config=config, n_samples=300)
    summary = evaluation.summary
    assert summary["model"]["rmspe"] <= summary["baselines"]["ols_log"]["rmspe"] + NOISE
    frame = evaluation.forecasts
    model = frame[(frame["method"] == "hierarchical") & frame["y"].notna()]
    for column in ("point", "median", "point_rmspe", "hi_90"):
        assert np.isfinite(model[column]).all(), column
    ratio = model["point"] / model["y"]
    assert ratio.max() < 3.0 and ratio.min() > 0.3  # the mean stays near what the store sold
    assert 0.75 <= summary["model"]["coverage_90"] <= 1.0


def test_unseen_levels_fall_back_to_the_group_reference(demo_cube):
    """A hierarchy of stores closed on Sundays and holidays knows nothing of those levels: a new
    store gets the first weekday's level for Sundays, the ordinary day's for holidays and the average
    variant's for a variant the hierarchy lacks, with spreads it can move by its own days."""
    cube = demo_cube.select_stores([2, 3, 4, 14, 19, 101, 150, 177])
    chain = fit(cube, FitConfig(steps=25))
    seen = stores_per_feature(cube)
    hyper = pooled_hyper(chain, {k: chain.params[k] for k in guide.global_sites()}, seen)
    names = list(chain.feature_names)
    mu, before = np.asarray(hyper["theta_mu"].loc), np.asarray(chain.params["theta_mu"].loc)
    sigma = np.exp(np.asarray(hyper["theta_sigma"].loc))
    sunday, monday = names.index("weekday_Sun"), names.index("weekday_Mon")
    assert seen[sunday] == 0 and mu[sunday] == pytest.approx(before[monday])
    holiday, ordinary = names.index("state_holiday_a"), names.index("state_holiday_0")
    assert seen[holiday] == 0 and mu[holiday] == pytest.approx(before[ordinary])
    variants = [i for i, g in enumerate(chain.feature_groups) if g == "store_variant"]
    unseen = [i for i in variants if seen[i] == 0]
    assert unseen and mu[unseen[0]] == pytest.approx(before[[i for i in variants if seen[i]]].mean(), rel=1e-5)
    pinned = seen >= MIN_POOL_STORES
    fitted_sigma = np.exp(np.asarray(chain.params["theta_sigma"].loc))
    weekdays = np.array([g == "weekday" for g in chain.feature_groups])
    assert sigma[sunday] >= 0.999 * np.median(fitted_sigma[weekdays & pinned])
    assert np.allclose(mu[pinned], before[pinned]) and np.allclose(sigma[pinned], fitted_sigma[pinned])


def test_pooling_report_names_what_the_hierarchy_never_saw(demo_cube):
    report = pooling_report(demo_cube, [2, 3, 4, 14, 19, 101, 150, 177], [198, 199, 200])
    assert report.few_stores and report.n_stores == 8
    assert "weekday_Sun" in report.unseen and "Sunday" in report.text()
    wide = pooling_report(demo_cube, list(range(1, 61)), [198, 199, 200])
    assert not wide.few_stores
