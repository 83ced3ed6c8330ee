"""The dispersion's weekday and promo offsets (hierarchy: r_effects): which features carry them, how
a cell's law adds them, and fits saved before them."""

from __future__ import annotations

import numpy as np
import pytest

from bhm_core.model import guide
from bhm_core.model.config import Priors
from bhm_core.model.hierarchy import (
    DISPERSION_EFFECT_SCALE,
    NO_EFFECT_SCALE,
    StoreParameters,
    cell_laws,
    dispersion_slots,
    grid_laws,
    prior_arrays,
    store_parameters,
)
from bhm_core.model.start import absent_global_params


def test_only_weekday_and_promo_features_get_a_dispersion_offset_prior():
    groups = ("weekday", "weekday", "promo", "state_holiday", "christmas")
    scale = prior_arrays(Priors(), groups).phi_scale
    np.testing.assert_allclose(scale, [DISPERSION_EFFECT_SCALE] * 3 + [NO_EFFECT_SCALE] * 2)


def test_a_cells_dispersion_is_its_stores_plus_its_weekday_and_promo_offsets():
    groups = ("weekday", "weekday", "promo", "christmas")
    store = StoreParameters(theta=np.zeros((2, 4)), r=np.array([1.0, 2.0]), r_effects=np.array([0.5, -0.25, 4.0, 9.0]))
    cell_store = np.array([0, 1, 1])
    index = np.array([[0, 2, 3], [1, 2, 3], [0, 2, 3]])  # (cells, slots) feature columns: weekday, promo, christmas
    value = np.array([[1.0, 0.0, 1.0], [1.0, 0.5, 1.0], [1.0, 1.0, 0.0]])
    slots = dispersion_slots(index[0], groups)
    np.testing.assert_array_equal(slots, [0, 1])
    _, dispersion = cell_laws(store, cell_store, index, value, slots)
    # the christmas slot's offset (9.0) is never read: only the weekday and promo groups have one
    np.testing.assert_allclose(dispersion, [1.0 + 0.5, 2.0 - 0.25 + 2.0, 2.0 + 0.5 + 4.0])
    # Without offsets (latents of a fit saved before them) a cell's dispersion is its store's.
    _, plain = cell_laws(store._replace(r_effects=None), cell_store, index, value, slots)
    np.testing.assert_allclose(plain, [1.0, 2.0, 2.0])
    assert len(dispersion_slots(index[0], ("state_holiday",) * 4)) == 0


def test_latents_without_offsets_and_old_fits_params():
    latents = {
        "theta_mu": np.zeros(3),
        "theta_sigma": np.ones(3),
        "z": np.zeros((2, 3)),
        "r_mu": np.asarray(1.0),
        "r_sigma": np.asarray(1.0),
        "w": np.zeros(2),
    }
    assert store_parameters(latents).r_effects is None
    assert "r_effects" in guide.global_sites()
    added = absent_global_params({}, 3)["r_effects"]
    np.testing.assert_allclose(added.loc, 0.0)
    np.testing.assert_allclose(np.exp(added.log_scale), NO_EFFECT_SCALE, rtol=1e-5)
    assert absent_global_params({"r_effects": added}, 3) == {}


@pytest.mark.parametrize("n_features", [1, 13])
def test_the_guide_site_has_one_offset_per_feature(n_features):
    assert guide.site("r_effects").shape(5, n_features) == (n_features,)


def test_grid_laws_are_cell_laws_on_every_store_day_of_a_grid():
    """Draws x stores x days: the dense-row product gives each cell's law as the gather does,
    with two slots naming one column (their values add) and without dispersion offsets."""
    rng = np.random.default_rng(0)
    n_draws, n_stores, n_days, n_features = 3, 4, 5, 6
    store = StoreParameters(
        theta=rng.normal(size=(n_draws, n_stores, n_features)),
        r=rng.normal(size=(n_draws, n_stores)),
        r_effects=rng.normal(size=(n_draws, n_features)),
    )
    index = np.stack(
        [
            rng.integers(0, 3, (n_stores, n_days)),
            rng.integers(2, 6, (n_stores, n_days)),
            np.full((n_stores, n_days), 2),
        ],
        axis=-1,
    )  # the first two slots' columns overlap, the third always names column 2
    value = rng.normal(size=(n_stores, n_days, 3)).astype(np.float32)
    slots = np.array([0, 2], np.int32)
    cell_store = np.repeat(np.arange(n_stores), n_days)
    for params in (store, store._replace(r_effects=None)):
        eta, dispersion = grid_laws(params, index, value, slots)
        want_eta, want_dispersion = cell_laws(params, cell_store, index.reshape(-1, 3), value.reshape(-1, 3), slots)
        np.testing.assert_allclose(np.asarray(eta).reshape(n_draws, -1), want_eta, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(dispersion).reshape(n_draws, -1), want_dispersion, rtol=1e-5, atol=1e-5)
