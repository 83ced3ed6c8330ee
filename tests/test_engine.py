"""The inference engine: configuration, masking, compilation, recovery, warm/cold starts, artifacts."""

import json
import math
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bhm_core.artifacts import FitStore, fit_key, fit_or_load
from bhm_core.data.cells import Cells, observed_cells
from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.errors import ArtifactError, ConfigError, DataError, FitDivergedError
from bhm_core.evaluation.metrics import rmspe
from bhm_core.forecast.predict import forecast, forecast_total, store_day_samples
from bhm_core.forecast.sampling import day_shocks, draw_latents
from bhm_core.inference.coldstart import fit_new_stores, priors_from_posterior
from bhm_core.inference.fit import fit
from bhm_core.inference.packing import pack
from bhm_core.inference.programs import COMPILE_COUNT
from bhm_core.inference.shocks import active_days, coefficient_shock_sd, day_shock_sd
from bhm_core.inference.state import COEFFICIENT_SHOCK_SD, DAY_SHOCK_SD, pad_stores
from bhm_core.model.config import EffectPrior, FitConfig, Priors
from bhm_core.model.guide import SiteParams, basis_name, negative_elbo, sample_guide
from bhm_core.model.hierarchy import prior_arrays, store_coefficients
from bhm_core.model.likelihoods import MAX_POISSON_RATE, NEGATIVE_BINOMIAL
from bhm_core.model.lsq import normal_equations, ridge
from bhm_core.model.start import initial_params

FAST = FitConfig(steps=60, chunk_steps=30)


@pytest.fixture(scope="module")
def demo():
    return load_dataset(DemoSource(n_stores=40, n_days=400, seed=3))


@pytest.fixture(scope="module")
def cube(demo):
    # The demo is drawn from the reference model; its true parameters are in that parameterisation.
    return demo.cube(FeatureSpec.reference())


@pytest.fixture(scope="module")
def fitted(cube):
    return fit(cube, FitConfig(steps=300, chunk_steps=100))


# ---------------------------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Priors(promo=EffectPrior(mu_scale=-1.0)), ["Priors.promo", "mu_scale", "-1.0", "(0"]),
        (lambda: Priors(weekday=EffectPrior(sigma_scale=0.0)), ["Priors.weekday", "sigma_scale"]),
        (lambda: Priors(r_mu_loc=float("nan")), ["r_mu_loc", "finite"]),
        (lambda: FitConfig(learning_rate=0.0), ["learning_rate", "0.0", "(0, 10]"]),
        (lambda: FitConfig(steps=0), ["steps", "[1"]),
        (lambda: FitConfig(optimizer="sgd"), ["optimizer", "adam"]),
        (lambda: FitConfig(batch_size=0), ["batch_size"]),
    ],
)
def test_invalid_settings_name_field_value_and_range(make, words):
    with pytest.raises(ConfigError) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_priors_round_trip_through_dict():
    priors = Priors().with_group("promo", mu_loc=0.3, mu_scale=0.2)
    assert Priors.from_dict(priors.to_dict()) == priors
    assert hash(priors) != hash(Priors())


# ---------------------------------------------------------------------------------------------
# the log density


def _loss_inputs(cube):
    cells = observed_cells(cube)
    prior = prior_arrays(Priors(), cube.design.groups)
    data = pack(cells, cube.n_stores, cube.design.groups)
    params = pad_stores(
        initial_params(cells, cube.n_stores, cube.design.n_features, FitConfig(), prior, NEGATIVE_BINOMIAL),
        data.store_mask.shape[0],
    )
    return data, prior, params


def test_padding_cells_and_stores_do_not_change_the_loss(cube):
    data, prior, params = _loss_inputs(cube)
    key = jax.random.PRNGKey(1)
    base = float(negative_elbo(key, params, data, prior))
    # Fill every padding cell with wild values: masked cells must contribute exactly nothing.
    pad = ~data.cell_mask
    noisy = data._replace(
        y=np.where(pad, 1e6, data.y),
        cell_value=np.where(pad[:, None], 50.0, data.cell_value),
        y_constant=np.where(pad, -3.0, data.y_constant),
    )
    assert pad.sum() > 0
    assert float(negative_elbo(key, params, noisy, prior)) == pytest.approx(base, rel=1e-6)


def test_closed_and_missing_days_are_not_cells(cube):
    cells = observed_cells(cube)
    assert len(cells.y) == cube.observed.sum()
    assert np.all(cube.observed[cells.store, cells.day])
    assert np.all(cells.y > 0)


def test_jit_equals_no_jit(cube):
    data, prior, params = _loss_inputs(cube)
    key = jax.random.PRNGKey(2)
    jitted = float(jax.jit(negative_elbo)(key, params, data, prior))
    with jax.disable_jit():
        plain = float(negative_elbo(key, params, data, prior))
    assert jitted == pytest.approx(plain, rel=1e-5)


def test_log_likelihood_matches_gamma_poisson(cube):
    """The hand-written NegBinomialMean log_prob equals NumPyro's GammaPoisson."""
    import numpyro.distributions as dist

    from bhm_core.model.likelihoods import NegBinomialMean

    y = np.array([0.0, 1.0, 7.0, 5000.0, 12000.0])
    mean = np.array([3.0, 2.0, 8.0, 6000.0, 9000.0])
    r = np.array([0.5, 4.0, 2.0, 4.0, 5.0])
    from scipy.special import gammaln

    ours = NegBinomialMean(np.log(mean), r).log_prob(y)
    a, b = mean * np.exp(-r), np.exp(-r)  # float64 reference of the same law
    exact = gammaln(y + a) - gammaln(a) - gammaln(y + 1) + a * np.log(b) - (a + y) * np.log1p(b)
    # float32 lgamma differences of numbers near 1e5 lose ~3 decimals; the gradient does not.
    np.testing.assert_allclose(ours, exact, rtol=5e-4)
    np.testing.assert_allclose(dist.GammaPoisson(a, b).log_prob(y), exact, rtol=5e-4)


def test_likelihood_gradient_matches_autodiff_of_the_formula():
    """The analytic gradient of nb_log_prob equals autodiff of GammaPoisson's log density."""
    import numpyro.distributions as dist

    from bhm_core.model.likelihoods import nb_log_prob

    y = jnp.array([0.0, 1.0, 7.0, 300.0, 5000.0, 12000.0])
    log_mean = jnp.log(jnp.array([3.0, 2.0, 8.0, 250.0, 6000.0, 9000.0]))
    r = jnp.array([0.5, 4.0, 2.0, -1.0, 4.0, 5.0])
    lgamma_y1 = jax.scipy.special.gammaln(y + 1)

    def reference(log_mean, r):
        return dist.GammaPoisson(jnp.exp(log_mean - r), jnp.exp(-r)).log_prob(y).sum()

    ours = jax.grad(lambda m, r: nb_log_prob(m, r, y, lgamma_y1).sum(), argnums=(0, 1))(log_mean, r)
    expected = jax.grad(reference, argnums=(0, 1))(log_mean, r)
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


def test_whitened_guide_density_is_the_full_covariance_gaussian():
    """theta_s = offset_s + shift_s theta_mu + chol_s u_s with u ~ N(loc, diag(scale^2)) and
    z_s = (theta_s - theta_mu) / theta_sigma: log q of a draw is log q(theta_mu) + log q(theta_sigma)
    + the log density of z_s under the correlated Gaussian this gives for the drawn hyper-parameters."""
    from scipy.stats import multivariate_normal, norm

    from bhm_core.model.guide import SiteParams, Whitening

    rng = np.random.default_rng(0)
    n_stores, n_features = 3, 4
    chol = np.tril(rng.normal(size=(n_stores, n_features, n_features)), -1) * 0.3 + np.eye(n_features) * 0.8
    shift = rng.uniform(0, 1, (n_stores, n_features, n_features)) * 0.2 + np.eye(n_features) * 0.5

    def site(*shape):
        return SiteParams(
            rng.normal(size=shape).astype(np.float32), rng.normal(scale=0.3, size=shape).astype(np.float32)
        )

    params = {
        "theta_mu": site(n_features),
        "theta_sigma": site(n_features),
        "z": site(n_stores, n_features),
        basis_name("z"): Whitening(
            rng.normal(size=(n_stores, n_features)).astype(np.float32),
            shift.astype(np.float32),
            chol.astype(np.float32),
        ),
    }
    values, log_q = sample_guide(jax.random.PRNGKey(1), params)
    mu, sigma = np.asarray(values["theta_mu"], np.float64), np.asarray(values["theta_sigma"], np.float64)
    expected = norm(params["theta_mu"].loc, np.exp(params["theta_mu"].log_scale)).logpdf(mu).sum()
    expected += (
        norm(params["theta_sigma"].loc, np.exp(params["theta_sigma"].log_scale)).logpdf(np.log(sigma)) - np.log(sigma)
    ).sum()
    loc, scale = params["z"].loc, np.exp(params["z"].log_scale)
    basis = params[basis_name("z")]
    for s in range(n_stores):
        mean_theta = basis.offset[s] + shift[s] @ mu + chol[s] @ loc[s]
        cov_theta = chol[s] @ np.diag(scale[s] ** 2) @ chol[s].T
        expected += multivariate_normal((mean_theta - mu) / sigma, cov_theta / np.outer(sigma, sigma)).logpdf(
            values["z"][s]
        )
    assert float(log_q) == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# fitting


def test_fit_reports_progress_and_converges(cube):
    seen = []
    result = fit(cube, FitConfig(steps=90, chunk_steps=30), on_progress=lambda s, l: seen.append((s, l)))
    assert [s for s, _ in seen] == [30, 60, 90]
    assert len(result.losses) == 90 and np.all(np.isfinite(result.losses))
    assert result.losses[-10:].mean() < result.losses[:10].mean()


def test_no_recompilation_when_numbers_change(cube):
    fit(cube, FAST)
    before = COMPILE_COUNT["n"]
    fit(cube, FitConfig(steps=45, chunk_steps=30, learning_rate=0.01, seed=4))
    fit(cube, FAST, Priors(promo=EffectPrior(mu_loc=0.5, mu_scale=0.1), r_mu_loc=3.0))
    # Another subset of similar size lands in the same shape bucket.
    fit(cube.select_stores(cube.store_ids[1:]), FAST)
    assert COMPILE_COUNT["n"] == before


def test_cancel_between_chunks(cube):
    result = fit(cube, FitConfig(steps=300, chunk_steps=30), should_stop=lambda: True)
    assert result.meta["cancelled"] is True
    assert len(result.losses) == 30


def test_divergence_is_caught_and_last_good_parameters_kept(cube):
    with pytest.raises(FitDivergedError) as info:
        fit(cube, FitConfig(steps=200, chunk_steps=50, learning_rate=10.0, schedule="constant", init="prior"))
    err = info.value
    assert err.step is not None and err.step >= 1
    assert "learning rate" in str(err)
    leaves = jax.tree.leaves(err.last_good.params)
    assert all(np.all(np.isfinite(a)) for a in leaves)
    assert DAY_SHOCK_SD in err.last_good.meta  # it may be made current and forecast


def test_warm_start_continues_adam(cube):
    first = fit(cube, FAST)
    more = fit(cube, FAST, init=first)
    assert int(more.steps) == 2 * FAST.steps
    assert more.losses[-10:].mean() <= first.losses[-10:].mean() + 0.001 * abs(first.losses[-1])


def test_refit_after_new_days_continues_the_optimizer_from_the_new_days_start(cube):
    """On new days the start's approximation of the new posterior is the better starting point; the
    previous fit gives its step count and the hyper-parameters' optimizer moments."""
    early = fit(cube.select_days(None, cube.dates[-60]), FAST)
    later = fit(cube, FitConfig(steps=30, chunk_steps=30), init=early)
    fresh = fit(cube, FitConfig(steps=30, chunk_steps=30))
    assert int(later.steps) == FAST.steps + 30
    assert later.losses[-5:].mean() <= fresh.losses[-5:].mean() + 1e-3 * abs(fresh.losses[-1])


# ---------------------------------------------------------------------------------------------
# recovery of the demo's true parameters


def _guide_samples(result, n=400):
    draws = [sample_guide(k, result.params)[0] for k in jax.random.split(jax.random.PRNGKey(0), n)]
    return {k: np.stack([d[k] for d in draws]) for k in draws[0]}


def test_recovers_true_weekday_and_promo_effects(demo, cube, fitted):
    truth = demo.truth
    names = list(cube.feature_names)
    draws = _guide_samples(fitted)
    theta = draws["theta_mu"][:, None, :] + draws["theta_sigma"][:, None, :] * draws["z"]
    promo = names.index("promo")
    wd = [names.index(f"weekday_{d}") for d in ("Tue", "Wed", "Thu", "Fri", "Sat")]
    mon = names.index("weekday_Mon")
    # Weekday effects relative to Monday are identified per store; absolute levels are not
    # (a store-level feature adds the same constant to every day).
    est = np.concatenate([theta[:, :, [promo]], theta[:, :, wd] - theta[:, :, [mon]]], axis=2)
    true = np.concatenate([truth["theta"][:, [promo]], truth["theta"][:, wd] - truth["theta"][:, [mon]]], axis=1)
    lo, hi = np.percentile(est, [5, 95], axis=0)
    inside = (true >= lo) & (true <= hi)
    assert inside[:, 0].mean() >= 0.85, f"promo effect covered for {inside[:, 0].mean():.0%} of stores"
    assert inside[:, 1:].mean() >= 0.85, f"weekday effects covered for {inside[:, 1:].mean():.0%}"
    hyper = draws["theta_mu"]
    assert abs(hyper[:, promo].mean() - truth["theta_mu"][promo]) < 0.05
    contrast = hyper[:, wd].mean(0) - hyper[:, mon].mean()
    np.testing.assert_allclose(contrast, truth["theta_mu"][wd] - truth["theta_mu"][mon], atol=0.05)
    r_mu = draws["r_mu"].mean()
    assert abs(r_mu - truth["r_mu"]) < 0.3


# ---------------------------------------------------------------------------------------------
# prediction


def test_forecast_shapes_intervals_and_closed_days(cube, fitted):
    stores = cube.store_ids[:3]
    frame = forecast(fitted, cube, stores, cube.dates[-14], cube.dates[-1], n_samples=200)
    assert len(frame) == 3 * 14
    assert {"store", "date", "method", "y", "point", "median", "lo_50", "hi_90", "crps"} <= set(frame.columns)
    open_ = frame[frame["open"]]
    assert np.all(open_["lo_90"] <= open_["lo_50"]) and np.all(open_["lo_50"] <= open_["median"])
    assert np.all(open_["median"] <= open_["hi_50"]) and np.all(open_["hi_50"] <= open_["hi_90"])
    assert np.all(frame.loc[~frame["open"], "point"] == 0)


def test_future_dates_and_promo_scenario(cube, fitted):
    from bhm_core.forecast.sampling import Scenario

    last = cube.dates[-1]
    on = forecast(fitted, cube, cube.store_ids[:2], last + 1, last + 14, n_samples=300, scenario=Scenario(promo=1))
    off = forecast(fitted, cube, cube.store_ids[:2], last + 1, last + 14, n_samples=300, scenario=Scenario(promo=0))
    weekdays = on["date"].dt.day_of_week < 5
    assert on["y"].isna().all()
    ratio = on.loc[weekdays, "point"].sum() / off.loc[weekdays, "point"].sum()
    assert ratio > 1.2  # the demo's promo lifts sales by about exp(0.38)


def test_chunked_prediction_equals_unchunked(cube, fitted):
    a = forecast(fitted, cube, cube.store_ids[:5], cube.dates[-7], cube.dates[-1], n_samples=50, chunk_stores=2)
    b = forecast(fitted, cube, cube.store_ids[:5], cube.dates[-7], cube.dates[-1], n_samples=50, chunk_stores=5)
    assert a.shape == b.shape
    # Draws are keyed by store id, so any chunking gives the very same forecast.
    np.testing.assert_allclose(a["point"], b["point"], rtol=1e-6)


def test_total_interval_comes_from_summed_samples(cube, fitted):
    stores = cube.store_ids[:6]
    total = forecast_total(fitted, cube, stores, cube.dates[-7], cube.dates[-1], n_samples=400)
    per_store = forecast(fitted, cube, stores, cube.dates[-7], cube.dates[-1], n_samples=400)
    summed = per_store.groupby("date")[["point", "lo_90", "hi_90"]].sum()
    np.testing.assert_allclose(total["point"], summed["point"], rtol=0.1)
    # Quantiles of a sum are tighter than the sum of quantiles (independent store noise).
    open_days = summed["point"].to_numpy() > 0
    width_total = (total["hi_90"] - total["lo_90"]).to_numpy()[open_days]
    width_summed = (summed["hi_90"] - summed["lo_90"]).to_numpy()[open_days]
    assert np.all(width_total <= width_summed + 1e-6)  # equal on days with one store open
    assert np.mean(width_total < width_summed) > 0.5


def _cells_with_day_shocks(shock_sd, n_stores=200, n_days=120, noise_sd=0.1, seed=0):
    """One feature (the level, log 1000); log sales = level + the day's shock + store-day noise."""
    rng = np.random.default_rng(seed)
    store, day = (
        a.ravel().astype(np.int32) for a in np.meshgrid(np.arange(n_stores), np.arange(n_days), indexing="ij")
    )
    log_y = np.log(1000.0) + shock_sd * rng.standard_normal(n_days)[day] + noise_sd * rng.standard_normal(day.size)
    cells = Cells(
        store,
        day,
        np.zeros((day.size, 1), np.int32),
        np.ones((day.size, 1), np.float32),
        np.exp(log_y).astype(np.float32),
    )
    params = {
        "theta_mu": SiteParams(np.array([np.log(1000.0)]), np.zeros(1)),
        "theta_sigma": SiteParams(np.array([-20.0]), np.zeros(1)),
        "z": SiteParams(np.zeros((n_stores, 1)), np.zeros((n_stores, 1))),
    }
    return cells, params


@pytest.mark.parametrize("truth", [0.0, 0.05, 0.1])
def test_day_shock_sd_is_recovered_from_the_residuals(truth):
    cells, params = _cells_with_day_shocks(truth)
    assert day_shock_sd(params, cells) == pytest.approx(truth, abs=max(0.2 * truth, 0.01))
    few_stores = Cells(*(a[cells.store < 3] for a in (cells.store, cells.day, cells.index, cells.value, cells.y)))
    assert day_shock_sd(params, few_stores) == 0.0  # no day has enough stores to tell


def test_feature_days_count_the_days_a_feature_had_sales():
    # 4 features over 2 slots (feature 3 never set); feature 2 is set on days 1 and 4, with value 0
    # on day 2 and on day 3 only in a cell without sales: neither counts.
    store = np.array([0, 1, 0, 1, 0, 1], np.int32)
    day = np.array([0, 1, 2, 3, 4, 4], np.int32)
    index = np.array([[0, 1], [0, 2], [0, 2], [0, 2], [0, 2], [0, 1]], np.int32)
    value = np.array([[1, 1], [1, 1], [1, 0], [1, 1], [1, 0.5], [1, 1]], np.float32)
    y = np.array([5, 7, 3, 0, 4, 6], np.float32)
    cells = Cells(store, day, index, value, y)
    np.testing.assert_array_equal(active_days(cells, 4), [4, 2, 2, 0])
    # A day's shock moves every store alike: a feature measured on d days carries their mean's error.
    np.testing.assert_allclose(
        coefficient_shock_sd(0.05, np.array([4, 2, 2, 0])), [0.025, 0.05 / np.sqrt(2), 0.05 / np.sqrt(2), 0.05]
    )


def test_chain_coefficients_carry_the_day_shocks_error_in_every_draw(cube, fitted):
    n_features = len(fitted.feature_names)
    days = active_days(observed_cells(cube), n_features)
    np.testing.assert_allclose(fitted.coefficient_shock_sd, coefficient_shock_sd(fitted.day_shock_sd, days), rtol=1e-6)
    rare = int(np.argmin(np.where(days > 0, days, np.inf)))  # a holiday level: the fewest days
    assert fitted.coefficient_shock_sd[rare] == fitted.coefficient_shock_sd.max() > 0
    sd = np.zeros(n_features)
    sd[rare] = 0.2
    calm = replace(fitted, meta={**fitted.meta, COEFFICIENT_SHOCK_SD: np.zeros(n_features).tolist()})
    shocked = replace(fitted, meta={**fitted.meta, COEFFICIENT_SHOCK_SD: sd.tolist()})
    key, rows = jax.random.PRNGKey(1), np.arange(4)
    a, b = (draw_latents(key, result, 4000, rows) for result in (calm, shocked))
    others = np.arange(n_features) != rare
    np.testing.assert_array_equal(a["theta_mu"][:, others], b["theta_mu"][:, others])
    shift = b["theta_mu"][:, rare] - a["theta_mu"][:, rare]
    assert shift.std() == pytest.approx(0.2, rel=0.05) and abs(shift.mean()) < 0.02
    # Every store's coefficient moves by the same draw: the error is the chain's, not a store's.
    theta_a, theta_b = (store_coefficients(x)[..., rare] for x in (a, b))
    np.testing.assert_allclose(theta_b - theta_a, np.broadcast_to(shift[:, None], theta_a.shape), atol=1e-5)
    # Drawn from the forecast's key alone: any chunking of the stores gives the same forecast.
    stores, first, last = cube.store_ids[:5], cube.dates[-14], cube.dates[-1]
    a = forecast(shocked, cube, stores, first, last, n_samples=50, chunk_stores=2)
    b = forecast(shocked, cube, stores, first, last, n_samples=50, chunk_stores=5)
    np.testing.assert_array_equal(a["point"].to_numpy(), b["point"].to_numpy())


@pytest.mark.parametrize("mean, dispersion", [(6000.0, 60.0), (30000.0, 60.0), (300.0, 60.0)])
def test_a_store_days_law_keeps_its_mean_and_spread_under_day_shocks(mean, dispersion):
    # 30000: the Gamma's own relative variance (0.002) is below the shock's (0.0025), so the
    # store-day carries a smaller share of the shock instead of a wider spread.
    n, sd = 100_000, 0.05
    dates = np.array(["2015-01-01"], dtype="datetime64[D]")
    law = (np.full((n, 1), np.log(mean)), np.full((n, 1), np.log(dispersion)))
    y = NEGATIVE_BINOMIAL.sample(np.random.default_rng(0), *law, day_shocks(sd, dates, n, 0), sd)[:, 0]
    assert y.mean() == pytest.approx(mean, rel=0.005)
    assert y.var() / mean**2 == pytest.approx((1 + dispersion) / mean, rel=0.03)  # Var = mean (1 + e^r)


def test_extreme_laws_of_a_diverged_fit_draw_without_failing():
    law = (np.array([[-800.0, 0.0, 800.0]]), np.array([[3.0, 40.0, -40.0]]))
    for sd in (0.0, 0.05):
        y = NEGATIVE_BINOMIAL.sample(np.random.default_rng(0), *law, np.full((1, 3), 0.01), sd)
        assert np.isfinite(y).all() and y[0, 0] == 0
        assert y[0, 2] == pytest.approx(MAX_POISSON_RATE, rel=1e-6)  # a Poisson draw at the cap


def test_day_shocks_move_the_stores_together_not_each_store_day(cube, fitted):
    shocked = replace(fitted, meta={**fitted.meta, DAY_SHOCK_SD: 0.1})
    calm = replace(fitted, meta={**fitted.meta, DAY_SHOCK_SD: 0.0})
    stores, first, last = cube.store_ids, cube.dates[-14], cube.dates[-1]
    width = {}
    for name, result in (("shocked", shocked), ("calm", calm)):
        total = forecast_total(result, cube, stores, first, last, n_samples=400)
        width[name] = np.median((total["hi_90"] - total["lo_90"]) / total["point"])
        one = store_day_samples(result, cube, int(stores[0]), last - 1, n_samples=4000)
        width[name + " store-day"] = np.std(np.log(one[one > 0]))
    # 40 stores' independent noise nearly cancels in the total; a shared 10% shock does not.
    assert width["shocked"] > 2.5 * width["calm"]
    assert width["shocked"] == pytest.approx(2 * 1.645 * 0.1, rel=0.35)
    assert width["shocked store-day"] == pytest.approx(width["calm store-day"], rel=0.15)
    # Shocks are keyed by date, store draws by store: any chunking gives the same forecast.
    a = forecast(shocked, cube, stores[:5], first, last, n_samples=50, chunk_stores=2)
    b = forecast(shocked, cube, stores[:5], first, last, n_samples=50, chunk_stores=5)
    np.testing.assert_array_equal(a["point"].to_numpy(), b["point"].to_numpy())


def test_total_of_observed_store_days_matches_the_actual_total(cube, fitted):
    stores, first, last = cube.store_ids[:8], cube.dates[-21], cube.dates[-1]
    per_cell = forecast(fitted, cube, stores, first, last, n_samples=300)
    observed = per_cell[per_cell["y"].notna()].groupby("date")["point"].sum()
    total = forecast_total(fitted, cube, stores, first, last, n_samples=300, observed_only=True)
    everything = forecast_total(fitted, cube, stores, first, last, n_samples=300)
    np.testing.assert_allclose(total.set_index("date")["point"].reindex(observed.index), observed, rtol=0.1)
    assert (total["point"] <= everything["point"] + 1e-9).all()
    np.testing.assert_array_equal(total["y"], everything["y"])


def test_store_day_density_samples(cube, fitted):
    samples = store_day_samples(fitted, cube, int(cube.store_ids[0]), cube.dates[-3], n_samples=500)
    assert samples.shape == (500,) and np.all(samples >= 0)


# ---------------------------------------------------------------------------------------------
# artifacts


def test_save_load_round_trip_gives_identical_predictions(tmp_path, cube, fitted):
    store = FitStore(tmp_path)
    key = fit_key(cube.fingerprint, fitted.config, fitted.priors, cube.spec)
    store.save(fitted, key)
    loaded = store.load(key)
    a = forecast(fitted, cube, cube.store_ids[:3], cube.dates[-7], cube.dates[-1], n_samples=100, seed=5)
    b = forecast(loaded, cube, cube.store_ids[:3], cube.dates[-7], cube.dates[-1], n_samples=100, seed=5)
    np.testing.assert_array_equal(a["point"].to_numpy(), b["point"].to_numpy())
    assert int(loaded.steps) == int(fitted.steps)
    assert loaded.meta[DAY_SHOCK_SD] == fitted.meta[DAY_SHOCK_SD]
    assert store.list()["key"].tolist() == [key]
    assert not list(tmp_path.glob(".tmp-*"))


def test_corrupt_or_stale_artifacts_are_refitted_not_loaded(tmp_path, cube):
    store = FitStore(tmp_path)
    first = fit_or_load(store, cube, FAST, Priors())
    assert not first.from_cache
    assert fit_or_load(store, cube, FAST, Priors()).from_cache
    npz = store.path(first.key) / "arrays.npz"
    npz.write_bytes(npz.read_bytes()[:-100])  # truncated
    with pytest.raises(ArtifactError, match="corrupt"):
        store.load(first.key)
    again = fit_or_load(store, cube, FAST, Priors())
    assert not again.from_cache and "corrupt" in again.note
    assert fit_or_load(store, cube, FAST, Priors()).from_cache
    record = store.path(first.key) / "record.json"
    data = json.loads(record.read_text())
    data["versions"]["jax"] = "0.0.1"
    record.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="made with"):
        store.load(first.key)


def test_no_pickle_in_artifacts(tmp_path, cube, fitted):
    store = FitStore(tmp_path)
    store.save(fitted, "abc123")
    with np.load(store.path("abc123") / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


# ---------------------------------------------------------------------------------------------
# cold start and posterior as prior


def test_cold_start_beats_a_per_store_fit_on_seven_days():
    data = load_dataset(DemoSource(n_stores=60, n_days=300, seed=11))
    full = data.cube()
    new_ids = full.store_ids[-10:]
    old = full.select_stores(full.store_ids[:-10])
    global_fit = fit(old, FitConfig(steps=200, chunk_steps=100))
    start = full.dates[100]
    new = full.select_stores(new_ids).with_origin(start + 9)  # the season profile stops there
    known = new.select_days(start, start + 9)  # ~7 open days
    local = fit_new_stores(global_fit, known, FitConfig(steps=200, chunk_steps=100))
    assert local.meta[DAY_SHOCK_SD] == global_fit.meta[DAY_SHOCK_SD]  # a week cannot measure it
    np.testing.assert_array_equal(local.coefficient_shock_sd, global_fit.coefficient_shock_sd)
    horizon = forecast(local, new, new_ids, start + 10, start + 51, n_samples=200)
    scored = horizon[horizon["y"].notna()]
    cold = rmspe(scored["y"], scored["point"])
    # The per-store alternative: log-linear least squares on the same known days.
    cells = observed_cells(known)
    xtx, xty, _ = normal_equations(
        cells.store, cells.index, cells.value, np.log(cells.y), known.n_stores, known.design.n_features
    )
    theta = ridge(xtx, xty, 1e-3, np.zeros(known.design.n_features))  # alone: nothing borrowed
    window = new.select_days(start + 10, start + 51)
    future = observed_cells(window)
    eta = (theta[future.store[:, None], future.index] * future.value).sum(-1)
    per_store = rmspe(future.y, np.exp(eta))
    assert cold < per_store
    assert cold < 0.35


def test_priors_from_posterior_centre_on_the_fit(fitted):
    priors = priors_from_posterior(fitted)
    promo = list(fitted.feature_names).index("promo")
    assert priors.promo.mu_loc == pytest.approx(float(fitted.params["theta_mu"].loc[promo]))
    assert priors.promo.mu_scale < 1.0
    assert math.isfinite(priors.r_mu_loc)


def test_a_fit_refuses_training_days_cut_before_the_features_origin(demo, cube):
    default = demo.cube().select_stores(demo.cube().store_ids[:3])  # season, recent level, trend
    cutoff = default.dates[-30]
    with pytest.raises(DataError, match=f"recent_level, season.*with_origin\\('{cutoff}'\\)"):
        fit(default.select_days(None, cutoff), FitConfig(steps=2))
    anchored = default.with_origin(cutoff).select_days(None, cutoff)
    assert fit(anchored, FitConfig(steps=2)).losses.shape == (2,)
    # The reference features do not depend on the origin: any window may be fitted.
    assert fit(cube.select_days(None, cutoff), FitConfig(steps=2)).losses.shape == (2,)


@pytest.mark.parametrize("batch_size", [None, 8])
def test_a_fresh_fit_compiles_its_program_once_while_it_starts(cube, batch_size):
    # the program compiled ahead, from shapes alone, is the one the fit then runs
    config = FitConfig(steps=7, chunk_steps=7, batch_size=batch_size, warmup_steps=3)
    before = COMPILE_COUNT["n"]
    fit(cube.select_stores(cube.store_ids[:29]), config)
    assert COMPILE_COUNT["n"] == before + 1
