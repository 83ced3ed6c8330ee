"""Store-minibatch SVI: unbiased gradients, untouched stores, and a fit that still converges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bhm_core.data.cells import observed_cells
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.evaluation.metrics import rmspe
from bhm_core.forecast.predict import forecast
from bhm_core.inference.fit import fit
from bhm_core.inference.packing import batch_of, pack, pack_by_store
from bhm_core.inference.state import gather_rows, pad_stores
from bhm_core.model.config import FitConfig, Priors
from bhm_core.model.guide import SiteParams, negative_elbo, per_store_entries
from bhm_core.model.hierarchy import prior_arrays
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL
from bhm_core.model.start import initial_params


@pytest.fixture(scope="module")
def cube():
    return load_dataset(DemoSource(n_stores=12, n_days=120, seed=5)).cube()


def _deterministic_params(cube, s_pad):
    """Guide scales ~0, so the ELBO gradient has no sampling noise and batches can be compared exactly."""
    cells = observed_cells(cube)
    prior = prior_arrays(Priors(), cube.design.groups)
    params = initial_params(cells, cube.n_stores, cube.design.n_features, FitConfig(), prior, NEGATIVE_BINOMIAL)
    params = {
        k: SiteParams(v.loc, np.full_like(v.log_scale, -30.0)) if isinstance(v, SiteParams) else v
        for k, v in params.items()
    }
    return cells, prior, pad_stores(params, s_pad)


def test_minibatch_gradient_is_unbiased(cube):
    packed = pack_by_store(observed_cells(cube), cube.n_stores, cube.design.groups)
    cells, prior, params = _deterministic_params(cube, packed.n_rows)
    full_data = pack(cells, cube.n_stores, cube.design.groups)
    key = jax.random.PRNGKey(0)
    s_full = full_data.store_mask.shape[0]
    full_params = {k: type(v)(*(a[:s_full] for a in v)) if k in per_store_entries() else v for k, v in params.items()}
    full = jax.grad(negative_elbo, argnums=1)(key, full_params, full_data, prior)

    def batch_grad(rows):
        def loss(p):
            return negative_elbo(key, gather_rows(p, rows), batch_of(packed, rows), prior)

        return jax.grad(loss)(params)

    # With one store per batch drawn uniformly, the expectation is the mean over every store.
    grads = [batch_grad(jnp.array([s])) for s in range(cube.n_stores)]
    mean = jax.tree.map(lambda *g: sum(g) / len(g), *grads)
    for name in ("theta_mu", "theta_sigma", "r_mu", "r_sigma"):
        np.testing.assert_allclose(mean[name].loc, full[name].loc, rtol=2e-3, atol=1e-2)
    n = cube.n_stores
    np.testing.assert_allclose(mean["z"].loc[:n], full["z"].loc[:n], rtol=2e-3, atol=1e-2)


def test_minibatch_fit_leaves_other_stores_untouched_and_converges(cube):
    one_step = fit(cube, FitConfig(steps=1, batch_size=2, chunk_steps=1))
    start = fit(cube, FitConfig(steps=1, learning_rate=1e-9, chunk_steps=1))  # ~ the starting point
    moved = np.any(np.abs(one_step.params["z"].loc - start.params["z"].loc) > 1e-6, axis=1)
    assert 1 <= moved.sum() <= 2

    full = fit(cube, FitConfig(steps=200, chunk_steps=100))
    mini = fit(cube, FitConfig(steps=400, chunk_steps=100, batch_size=4))
    window = dict(first=cube.dates[-30], last=cube.dates[-1], n_samples=100)
    a = forecast(full, cube, **window)
    b = forecast(mini, cube, **window)
    a, b = a[a.y.notna()], b[b.y.notna()]
    assert rmspe(b.y, b.point) < 1.1 * rmspe(a.y, a.point)
