"""The Student-t law on log sales: its density, its sampler, and a fit, a forecast and a saved
artifact with it."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bhm_core.artifacts import FitStore
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.forecast.predict import forecast
from bhm_core.forecast.sampling import day_shocks
from bhm_core.model import likelihoods
from bhm_core.model.config import FitConfig

LAW = likelihoods.get("log_student_t")
DF = LAW.DF


def test_its_density_is_a_t_on_log_one_plus_sales_with_the_jacobian():
    y = np.array([0.0, 5.0, 100.0, 7000.0, 31000.0])
    eta, r = np.log1p(y) + np.array([0.03, -0.2, 0.1, 0.0, 0.4]), np.array([5.0, 3.0, 4.0, 6.0, 5.0])
    expected = stats.t.logpdf(np.log1p(y), DF, loc=eta, scale=np.exp(-r / 2)) - np.log1p(y)
    for constant in (LAW.cell_constant(jnp.asarray(y)), None):  # precomputed, or from the value
        got = likelihoods.LogStudentTLaw(DF, jnp.asarray(eta), jnp.asarray(r), constant).log_prob(jnp.asarray(y))
        np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-5, atol=2e-5)
    # A density of sales: it integrates to one over y >= 0.
    grid = np.linspace(0.0, 40000.0, 400_001)
    law = likelihoods.LogStudentTLaw(DF, jnp.log(7000.0), jnp.asarray(4.0))
    density = np.exp(np.asarray(law.log_prob(jnp.asarray(grid))))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=2e-3)


def test_its_spread_and_its_inverse():
    r = np.array([3.0, 5.0, 7.0])
    variance = LAW.log_variance(np.array([100.0, 7000.0, 30000.0]), r)
    np.testing.assert_allclose(variance, np.exp(-r) * DF / (DF - 2))
    np.testing.assert_allclose(LAW.dispersion_for(variance, np.array([1.0, 2.0, 3.0])), r)
    assert LAW.log_variance(np.ones(4), 5.0).shape == (4,)  # broadcast against the means


@pytest.mark.parametrize("shock_sd", [0.0, 0.05])
def test_its_draws_keep_the_median_and_spread_the_fit_gives_under_day_shocks(shock_sd):
    n, eta, r = 200_000, np.log(7000.0), 5.0
    dates = np.array(["2015-01-01"], dtype="datetime64[D]")
    shocks = day_shocks(shock_sd, dates, n, 0)
    y = LAW.sample(np.random.default_rng(0), np.full((n, 1), eta), np.full((n, 1), r), shocks, shock_sd)[:, 0]
    assert y.dtype.kind == "i" and (y >= 0).all()  # whole sales, as the data
    assert np.median(y) == pytest.approx(np.expm1(eta), rel=0.003)
    assert np.std(np.log1p(y)) == pytest.approx(np.sqrt(LAW.log_variance(1.0, r)), rel=0.02)
    # The t's tails: more mass beyond 3 sd than a normal law of the same spread.
    z = (np.log1p(y) - eta) / np.sqrt(LAW.log_variance(1.0, r))
    beyond = np.mean(np.abs(z) > 3)
    assert beyond > 1.5 * 2 * stats.norm.sf(3)
    if shock_sd:  # a store-day's draws follow its day's shock (shared by the day's stores)
        assert np.corrcoef(np.log1p(y), shocks[:, 0])[0, 1] > 0.3


def test_the_numpyro_law_draws_what_it_scores():
    import jax

    law = likelihoods.LogStudentTLaw(DF, jnp.full(50_000, np.log(7000.0)), jnp.asarray(5.0))
    y = np.asarray(law.sample(jax.random.PRNGKey(0)))
    assert np.median(y) == pytest.approx(6999.0, rel=0.005)
    assert np.std(np.log1p(y)) == pytest.approx(np.sqrt(LAW.log_variance(1.0, 5.0)), rel=0.03)


def test_one_draw_per_element_of_eta_whatever_the_dispersions_shape():
    y = LAW.sample(np.random.default_rng(0), np.full(1000, np.log(7000.0)), np.float32(5.0))
    assert y.shape == (1000,) and len(np.unique(y)) > 500


@pytest.fixture(scope="module")
def fitted():
    """(the demo's truth, its cube, a fit with the law)."""
    from bhm_core.inference.fit import fit

    demo = load_dataset(DemoSource(n_stores=16, n_days=300, seed=2))
    cube = demo.cube()
    return demo.truth, cube, fit(cube, FitConfig(steps=150, likelihood="log_student_t"))


@pytest.mark.slow
def test_a_fit_with_it_recovers_the_promo_effect_and_forecasts_calibrated_intervals(fitted):
    truth, cube, result = fitted
    assert result.likelihood is LAW and np.isfinite(result.losses).all()
    promo = list(result.feature_names).index("promo")
    promo_truth = truth["theta_mu"][list(truth["feature_names"]).index("promo")]
    assert result.params["theta_mu"].loc[promo] == pytest.approx(promo_truth, abs=0.05)
    frame = forecast(result, cube, cube.store_ids, cube.dates[-42], cube.dates[-1], n_samples=300)
    scored = frame[frame["y"].notna()]
    covered = ((scored["y"] >= scored["lo_90"]) & (scored["y"] <= scored["hi_90"])).mean()
    assert 0.8 <= covered <= 0.98


@pytest.mark.slow
def test_a_fit_is_not_continued_under_another_law(fitted):
    from bhm_core.errors import ConfigError
    from bhm_core.inference.fit import fit

    _, cube, result = fitted
    with pytest.raises(ConfigError, match="made with 'log_student_t'") as caught:
        fit(cube, FitConfig(steps=10, likelihood="negative_binomial"), init=result)
    assert caught.value.key == "fit.likelihood"


@pytest.mark.slow
def test_a_fit_with_it_survives_a_save_and_a_load(fitted, tmp_path):
    _, cube, result = fitted
    store = FitStore(tmp_path)
    store.save(result, "abc123", spec=cube.spec)
    loaded = store.load("abc123")
    assert loaded.config.likelihood == "log_student_t"
    a = forecast(result, cube, cube.store_ids[:2], cube.dates[-7], cube.dates[-1], n_samples=50)
    b = forecast(loaded, cube, cube.store_ids[:2], cube.dates[-7], cube.dates[-1], n_samples=50)
    np.testing.assert_allclose(a["point"], b["point"])
