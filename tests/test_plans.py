"""Content keys (bhm_core.artifacts.content_key) and evaluation plans (bhm_core.evaluation.plans):
which hierarchy a cold start uses, the keys naming a run's result, and the cold start with its
hierarchy fitted, loaded or reused."""

from __future__ import annotations

from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pytest

from bhm_core.artifacts import FitStore, content_key, fit_key, library_versions
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.evaluation import plans
from bhm_core.evaluation.backtest import EvaluationCancelled
from bhm_core.model.config import FitConfig, Priors

FAST = FitConfig(steps=30, chunk_steps=10)


@pytest.fixture(scope="module")
def cube():
    return load_dataset(DemoSource(n_stores=12, n_days=120, seed=0)).cube()


def fake_fit(cube, ids):
    """What hierarchy_plan reads of a fit: its stores and the fingerprint of their data."""
    ids = np.asarray(ids, np.int64)
    return SimpleNamespace(store_ids=ids, data_fingerprint=cube.select_stores(ids).fingerprint)


def test_content_key_names_the_parts_and_their_kind():
    key = content_key("backtest", stores=[1, 2], horizon=42, config=FAST)
    assert len(key) == 20 and int(key, 16) >= 0
    assert key == content_key("backtest", horizon=42, config=FAST, stores=np.array([1, 2]))  # order, arrays
    assert key != content_key("coldstart", stores=[1, 2], horizon=42, config=FAST)
    assert key != content_key("backtest", stores=[2, 1], horizon=42, config=FAST)
    assert key != content_key("backtest", stores=[1, 2], horizon=42, config=replace(FAST, steps=31))
    # How often progress is reported does not change a result, so not its key either.
    assert key == content_key("backtest", stores=[1, 2], horizon=42, config=replace(FAST, chunk_steps=25))
    assert content_key("x", n=np.int64(3)) == content_key("x", n=3)


def test_fit_key_is_the_content_key_of_a_fits_parts(cube):
    key = fit_key(cube.fingerprint, FAST, Priors(), cube.spec)
    assert key == content_key(
        None,
        data=cube.fingerprint,
        config=FAST,
        priors=Priors().to_dict(),
        spec=asdict(cube.spec),
        versions=library_versions(),
        extra={},
    )
    assert key != fit_key(cube.fingerprint, FAST, Priors().with_group("promo", mu_loc=0.5), cube.spec)


def test_the_current_fit_is_reused_when_it_is_on_these_data_and_has_no_new_store(cube):
    current = fake_fit(cube, range(1, 7))
    plan = plans.hierarchy_plan(cube, [10, 11], current, picked=[1, 2], fallback_stores=5)
    assert plan.reuse is current and plan.stores == [1, 2, 3, 4, 5, 6]
    # A new store inside the fit: the hierarchy is fitted on the picks without the new ones.
    plan = plans.hierarchy_plan(cube, [3, 11], current, picked=[1, 2, 3], fallback_stores=5)
    assert plan.reuse is None and plan.stores == [1, 2]
    # Made on other data (another fingerprint): not reused.
    other = SimpleNamespace(store_ids=np.arange(1, 7), data_fingerprint="something else")
    assert plans.hierarchy_plan(cube, [11], other, picked=[1], fallback_stores=5).reuse is None
    # Stores this cube does not have: not reused either, and no error.
    missing = SimpleNamespace(store_ids=np.array([1, 999]), data_fingerprint="x")
    assert plans.hierarchy_plan(cube, [11], missing, picked=[1], fallback_stores=5).reuse is None


def test_when_every_pick_is_new_the_first_other_stores_are_fitted(cube):
    plan = plans.hierarchy_plan(cube, [1, 2], None, picked=[1, 2], fallback_stores=4)
    assert plan == plans.HierarchyPlan(None, [3, 4, 5, 6])


def test_a_given_selector_is_used_for_the_sub_cubes(cube):
    calls = []

    def select(c, ids):
        calls.append([int(i) for i in ids])
        return c.select_stores(ids)

    current = fake_fit(cube, [1, 2])
    assert plans.hierarchy_plan(cube, [5], current, [1], 3, select=select).reuse is current
    key = plans.hierarchy_key(cube, [1, 2], FAST, Priors(), select=select)
    assert calls == [[1, 2], [1, 2]]
    sub = cube.select_stores([1, 2])
    assert key == fit_key(sub.fingerprint, FAST, Priors(), sub.spec)
    assert plans.hierarchy_key(cube, [1, 2], FAST, Priors(), reuse_key="abc") == "abc"


def test_evaluation_keys_change_with_what_decides_the_result(cube):
    base = plans.backtest_key(cube, [1, 2], "2013-04-01", 14, FAST, Priors(), 500)
    assert base == plans.backtest_key(cube, np.array([1, 2]), np.datetime64("2013-04-01"), 14, FAST, Priors(), 500)
    assert base != plans.backtest_key(cube, [1, 2], "2013-04-01", 15, FAST, Priors(), 500)
    assert base != plans.backtest_key(cube, [1, 2], "2013-04-01", 14, FAST, Priors(), 200)
    cold = plans.coldstart_key(cube, [5, 4], 7, 14, "hkey", FAST, 500)
    assert cold == plans.coldstart_key(cube, [4, 5], 7, 14, "hkey", FAST, 500)  # the set of new stores
    assert cold != plans.coldstart_key(cube, [4, 5], 7, 14, "other hierarchy", FAST, 500)
    assert cold != plans.coldstart_key(cube, [4, 5], 8, 14, "hkey", FAST, 500)


@pytest.mark.slow
def test_coldstart_fits_the_hierarchy_once_then_loads_or_reuses_it(cube, tmp_path):
    store = FitStore(tmp_path / "fits")
    plan = plans.hierarchy_plan(cube, [11, 12], None, picked=[], fallback_stores=6)
    stages = []

    def run(plan):
        return plans.coldstart_with_hierarchy(
            cube,
            [12, 11],
            7,
            14,
            plan=plan,
            config=FAST,
            priors=Priors(),
            fit_store=store,
            n_samples=100,
            on_stage=lambda stage, steps: stages.append((stage, steps)),
        )

    first = run(plan)
    assert stages == [(plans.HIERARCHY_STAGE, 30), (plans.NEW_STORES_STAGE, 30)]
    assert first.summary["new_stores"] == [11, 12] and first.summary["n_fit_stores"] == 6
    assert first.summary["known_days"] == 7 and first.summary["horizon"] == 14
    assert len(store.list()) == 1  # the hierarchy was saved
    stages.clear()
    again = run(plan)
    assert len(store.list()) == 1 and again.fit.data_fingerprint == first.fit.data_fingerprint  # loaded
    stages.clear()
    reused = run(plans.HierarchyPlan(first.fit, plan.stores))
    assert stages == [(plans.NEW_STORES_STAGE, 30)]  # no hierarchy fit
    assert reused.fit is first.fit


@pytest.mark.slow
def test_a_cancelled_hierarchy_fit_scores_nothing(cube, tmp_path):
    plan = plans.HierarchyPlan(None, [1, 2, 3])
    with pytest.raises(EvaluationCancelled, match="while fitting the hierarchy"):
        plans.coldstart_with_hierarchy(
            cube,
            [12],
            7,
            14,
            plan=plan,
            config=replace(FAST, seed=3),
            priors=Priors(),
            fit_store=FitStore(tmp_path / "fits"),
            should_stop=lambda: True,
        )
    assert len(FitStore(tmp_path / "fits").list()) == 0  # a cancelled fit is never saved
