"""The model is open to extension from outside the package: another observation law, defined here
alone, fits, forecasts and round-trips through a saved artifact with no change to bhm_core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from bhm_core.artifacts import FitStore
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.forecast.predict import forecast
from bhm_core.model import likelihoods
from bhm_core.model.config import FitConfig


@dataclass(frozen=True)
class LogNormalSales(likelihoods.Likelihood):
    """log y ~ Normal(eta - s^2 / 2, s^2) with s^2 = exp(r): E[y] = exp(eta), Var[log y] = exp(r)."""

    name: ClassVar[str] = "test_log_normal"

    def distribution(self, eta, dispersion, constant):
        variance = jnp.exp(dispersion)
        return dist.LogNormal(eta - 0.5 * variance, jnp.sqrt(variance))

    def log_variance(self, mean, dispersion):
        return np.exp(dispersion) + 0.0 * np.asarray(mean)

    def dispersion_for(self, log_variance, mean):
        return np.log(np.maximum(log_variance, 1e-6))

    def sample(self, rng, eta, dispersion, shock=None, shock_sd=0.0):
        variance = np.exp(np.clip(dispersion, -30, 5))
        log_y = eta - 0.5 * variance + np.sqrt(variance) * rng.standard_normal(np.shape(eta))
        if shock is not None and shock_sd > 0:
            log_y = log_y + shock - 0.5 * shock_sd**2
        return np.exp(np.clip(log_y, -50, 40))


likelihoods.register(LogNormalSales())
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    return load_dataset(DemoSource(n_stores=16, n_days=300, seed=2))


@pytest.fixture(scope="module")
def fitted(demo):
    from bhm_core.inference.fit import fit

    cube = demo.cube()
    return cube, fit(cube, FitConfig(steps=150, likelihood=LogNormalSales.name))


def test_a_law_defined_outside_the_package_fits_and_recovers_the_promo_effect(demo, fitted):
    _, result = fitted
    assert result.likelihood.name == LogNormalSales.name
    assert np.isfinite(result.losses).all()
    promo = list(result.feature_names).index("promo")
    truth = demo.truth["theta_mu"][list(demo.truth["feature_names"]).index("promo")]
    assert result.params["theta_mu"].loc[promo] == pytest.approx(truth, abs=0.05)


def test_it_forecasts_with_its_own_sampler(fitted):
    cube, result = fitted
    frame = forecast(result, cube, cube.store_ids[:4], cube.dates[-28], cube.dates[-1], n_samples=300)
    scored = frame[frame["y"].notna()]
    assert np.isfinite(scored[["point", "lo_90", "hi_90"]].to_numpy()).all()
    assert not np.allclose(scored["point"], np.round(scored["point"]))  # continuous draws: not the NB's counts
    covered = ((scored["y"] >= scored["lo_90"]) & (scored["y"] <= scored["hi_90"])).mean()
    assert 0.75 <= covered <= 1.0


def test_it_survives_a_save_and_a_load(fitted, tmp_path):
    cube, result = fitted
    store = FitStore(tmp_path)
    store.save(result, "abc123", spec=cube.spec)
    loaded = store.load("abc123")
    assert loaded.config.likelihood == LogNormalSales.name
    a = forecast(result, cube, cube.store_ids[:2], cube.dates[-7], cube.dates[-1], n_samples=50)
    b = forecast(loaded, cube, cube.store_ids[:2], cube.dates[-7], cube.dates[-1], n_samples=50)
    np.testing.assert_allclose(a["point"], b["point"])
