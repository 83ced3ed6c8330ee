"""Drift checks on the synthetic chain: injected changes are found, a calm chain raises few alarms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.errors import DataError
from bhm_core.evaluation.drift import drift

pytestmark = pytest.mark.slow
RECENT = 56  # the last eight weeks


def _fitted(seed: int):
    from bhm_core.inference.fit import fit
    from bhm_core.model.config import FitConfig

    cube = load_dataset(DemoSource(n_stores=60, n_days=500, seed=seed)).cube(FeatureSpec.reference())
    cutoff = cube.dates[-RECENT - 1]
    return cube, cutoff, fit(cube.select_days(None, cutoff), FitConfig(steps=100))


@pytest.fixture(scope="module", params=[1, 2, 3])
def chain(request):
    return _fitted(request.param)


def test_a_calm_chain_flags_at_most_five_percent_of_its_stores_and_no_effect(chain):
    cube, _, result = chain
    report = drift(result, cube, RECENT)
    assert len(report["stores_flagged"]) <= 0.05 * cube.n_stores
    assert report["effects_flagged"] == [] and report["recent_days"] == RECENT and not report["overlaps_fit"]


def test_a_level_shift_in_five_stores_and_a_changed_promo_effect_are_found(chain):
    cube, cutoff, result = chain
    recent = cube.dates > cutoff
    sales = cube.sales.copy()
    sales[:5][:, recent] *= 1.5  # five stores left the model
    promo = (cube.covariates.promo > 0) & recent[None, :]
    sales = np.where(promo, sales * 1.3, sales).astype(np.float32)  # the promo effect grew by 30 %
    report = drift(result, replace(cube, sales=sales), RECENT)
    assert sorted(s["store"] for s in report["stores_flagged"]) == cube.store_ids[:5].tolist()
    assert all(s["mean_log_error"] > 0.3 for s in report["stores_flagged"])
    (effect,) = report["effects_flagged"]
    assert effect["effect"] == "promo" and effect["shift"] == pytest.approx(np.log(1.3), abs=0.03)
    assert effect["probability"] > 0.95


def test_inputs_report_new_and_vanished_stores():
    cube, _, result = _fitted(4)
    report = drift(result, cube.select_stores(cube.store_ids[1:]), RECENT)
    assert report["inputs"]["vanished_stores"] == [int(cube.store_ids[0])]
    assert 0.2 < report["inputs"]["promo_share"]["recent"] < 0.5
    with pytest.raises(DataError, match="recent days must be a whole number in 7"):
        drift(result, cube, 3)
