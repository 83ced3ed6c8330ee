"""Effects against the demo's true parameters: the mapping of the truth onto a fit's features and
stores, and a fit's intervals holding the truth about as often as they promise."""

from __future__ import annotations

import numpy as np
import pytest

from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.errors import DataError
from bhm_core.forecast import effects, truth
from bhm_core.inference.fit import fit
from bhm_core.model.config import FitConfig


@pytest.fixture(scope="module")
def demo():
    return load_dataset(DemoSource(n_stores=40, n_days=400, seed=3))


def test_identified_contrasts_lie_in_the_row_space():
    # two features always on together: each alone is not identified, their sum is
    xtx = np.array([[3.0, 3.0, 0.0], [3.0, 3.0, 0.0], [0.0, 0.0, 2.0]])
    weights = np.array([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0]])
    assert truth.identified(weights, xtx).tolist() == [False, True, True]


def test_true_coefficients_follow_the_fit_s_features_and_stores(demo):
    cube = demo.cube()
    stores = cube.store_ids[[5, 2]]
    chain, theta = truth.true_coefficients(demo.truth, cube.feature_names, stores)
    names = list(cube.feature_names)
    promo = names.index("promo")
    assert chain[promo] == pytest.approx(0.38)
    assert theta[0, promo] == pytest.approx(demo.truth["theta"][5, list(demo.truth["feature_names"]).index("promo")])
    assert chain[names.index("day_1")] == 0.0  # a group the generator does not have: no effect
    with pytest.raises(DataError):
        truth.true_coefficients(demo.truth, cube.feature_names, [10_000])


def test_a_fit_s_intervals_hold_the_truth(demo):
    cube = demo.cube()
    result = fit(cube, FitConfig(steps=100))
    seen = effects.feature_days(cube) > 0
    items = [c for c in effects.contrasts(result.feature_names, result.feature_groups, seen) if seen[c.feature]]
    latents = effects.latent_samples(result)
    every, _ = truth.true_effects(items, demo.truth, result.feature_names, result.store_ids)
    assert every["promo"] == pytest.approx(np.exp(0.38))
    chain, stores = truth.true_effects(items, demo.truth, result.feature_names, result.store_ids, cube)
    # promo and the promo x weekday terms are on together on every promo day: no single true split
    assert "promo" not in chain.index and "promo" not in set(stores["id"])
    assert "weekday_Tue" in chain.index and "school_holiday" in chain.index
    hits = truth.interval_hits(effects.store_effects(result, items, latents), stores)
    assert hits.loc["weekday_Tue", "stores"] == 40
    weekly = hits.loc[[i for i in hits.index if i.startswith("weekday_")]]
    assert 0.75 <= weekly["inside"].sum() / weekly["stores"].sum() <= 1.0
    table = truth.chain_hits(effects.summary_table(effects.global_effects(result, items, latents)), chain)
    assert table["inside"].mean() >= 0.6
