"""Where a fit starts: the guide's locations and widths from regressions on log sales.

Up to STORE_BLOCK stores, per-store ridge regressions refined by empirical Bayes (see
`shrunk_log_linear`) give a Gaussian approximation of each store's posterior, which becomes the
z guide's whitening. Past that (virtual and synthetic series, 10^5..10^6 stores) only the ridge
estimates are computed, a block of stores at a time, so memory stays at one block's dense design
instead of growing with the stores.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bhm_core.data.cells import Cells, store_sorted, store_sums
from bhm_core.model import guide
from bhm_core.model.config import FitConfig
from bhm_core.model.guide import SiteParams, Whitening
from bhm_core.model.hierarchy import NO_EFFECT_SCALE, standardised
from bhm_core.model.likelihoods import Likelihood
from bhm_core.model.lsq import (
    POOLED_PENALTY,
    STORE_PENALTY,
    block_equations,
    fit_log_linear,
    normal_equations,
    residual_variance,
    ridge,
    sorted_store_blocks,
)

INITIAL_LOG_SCALE = math.log(0.05)
START_THREADS = max(1, min(4, os.cpu_count() or 1))
STORE_BLOCK = 1 << 14  # above this many stores, ridge estimates only (no covariances)


def initial_params(
    cells: Cells, n_stores: int, n_features: int, config: FitConfig, priors_arr, likelihood: Likelihood
) -> dict:
    """Guide parameters near the optimum (least_squares) or at the prior means ("prior").

    least_squares: per-store ridge regressions on log sales, refined by empirical Bayes (see
    `shrunk_log_linear`), give both the locations and the widths of the guide, so SVI starts
    from a Gaussian approximation of the posterior instead of a point with arbitrary widths. The
    dispersion starts where the likelihood puts the spread of each store's residuals.
    """
    log_scales, extra = {}, {}
    log_scales["r_effects"] = np.log(np.minimum(np.asarray(priors_arr.phi_scale, np.float64), 0.05))
    w_scale = float(priors_arr.w_scale)
    if config.init == "least_squares":
        theta, cov, theta_mu, theta_sigma, resid_var = shrunk_log_linear(cells, n_stores, n_features)
        if cov is None:
            z = standardised(theta, {"theta_mu": theta_mu, "theta_sigma": theta_sigma})
        else:  # the guide on z starts as this Gaussian: white coordinates at 0, unit widths
            extra[guide.basis_name("z")] = whitening(theta, cov, theta_mu, theta_sigma)
            z = np.zeros_like(theta)
            log_scales["z"] = 0.0
        # Hyper-parameters: the standard errors of a mean and of a standard deviation over S stores.
        log_scales["theta_mu"] = np.log(theta_sigma / np.sqrt(n_stores))
        log_scales["theta_sigma"] = np.full(n_features, -0.5 * np.log(2.0 * n_stores))
        mean_y = store_sums(cells.store, n_stores, cells.y) / np.maximum(store_sums(cells.store, n_stores), 1)
        r_store = likelihood.dispersion_for(resid_var, mean_y)
        r_mu = float(np.median(r_store))
        r_sigma = max(float(r_store.std()) / w_scale, 0.1)
        w = np.clip((r_store - r_mu) / r_sigma, -3 * w_scale, 3 * w_scale)
    else:
        theta_mu = np.asarray(priors_arr.mu_loc, np.float64)
        theta_sigma = np.full(n_features, 0.5)
        z = np.zeros((n_stores, n_features))
        r_mu, r_sigma, w = float(priors_arr.r_mu_loc), 0.5, np.zeros(n_stores)
    values = {
        "theta_mu": theta_mu,
        "theta_sigma": theta_sigma,
        "r_mu": np.asarray(r_mu),
        "r_sigma": np.asarray(r_sigma),
        "z": z,
        "w": w,
        "r_effects": np.zeros(n_features),
    }
    return {
        **{name: _site_params(name, v, log_scales.get(name, INITIAL_LOG_SCALE)) for name, v in values.items()},
        **extra,
    }


def whitens(n_stores: int, config: FitConfig) -> bool:
    """Whether the start gives the whitened site a per-store basis: a least-squares start on at
    most STORE_BLOCK stores (`shrunk_log_linear` gives covariances only there)."""
    return config.init == "least_squares" and n_stores <= STORE_BLOCK


def new_store_params(n_stores: int, n_features: int) -> dict:
    """The local sites of stores the data barely know, at the prior: z = 0 with unit width (its
    whitening carries the start), w = 0 with the usual narrow start."""
    return {
        "z": _site_params("z", np.zeros((n_stores, n_features)), 0.0),
        "w": _site_params("w", np.zeros(n_stores), INITIAL_LOG_SCALE),
    }


def absent_global_params(params: dict, n_features: int) -> dict:
    """Guide entries for the global sites a fit saved before them lacks (the dispersion's weekday and
    promo offsets, r_effects): at 0 and about as narrow, so the fit's laws stay what they were."""
    if "r_effects" in params:
        return {}
    return {"r_effects": _site_params("r_effects", np.zeros(n_features), math.log(NO_EFFECT_SCALE))}


def _site_params(name: str, value, log_scale) -> SiteParams:
    """The guide's Normal for a latent at `value` (its own space), in the site's unconstrained space."""
    loc = np.asarray(guide.site(name).unconstrain(np.asarray(value, np.float64)), np.float32)
    return SiteParams(loc, np.asarray(np.broadcast_to(log_scale, np.shape(loc)), np.float32))


EB_ROUNDS = 3
MIN_SIGMA = 0.01  # floor on a feature's spread across stores, so no feature starts fully pooled


def shrunk_log_linear(cells: Cells, n_stores: int, n_features: int):
    """Empirical-Bayes estimates on log sales: the Gaussian approximation of the model's posterior.

    Treating log y = x theta_s + noise (noise variance per store from the ridge residuals) with
    theta_s ~ N(theta_mu, theta_sigma^2), alternate the per-store posteriors (batched F x F solves)
    and moment updates of theta_mu and theta_sigma. Returns per-store posterior means (S, F) and
    covariances (S, F, F), theta_mu (F,), theta_sigma (F,) and the residual variances (S,).
    Features a store never saw stay at the prior. Past STORE_BLOCK stores: ridge estimates and no
    covariances (None), to keep memory at a block's.
    """
    if n_stores > STORE_BLOCK:
        theta, resid_var = per_store_log_linear(cells, n_stores, n_features)
        return theta, None, theta.mean(0), np.maximum(theta.std(0), 0.05), resid_var
    equations = normal_equations(
        cells.store, cells.index, cells.value, np.log(cells.y.astype(np.float64)), n_stores, n_features
    )
    xtx, xty, counts = equations
    _, theta, resid_var = fit_log_linear(
        cells.store, cells.index, cells.value, cells.y, n_stores, n_features, equations=equations
    )
    resid_var = moderated_variance(resid_var, counts, n_features)
    noise = np.maximum(resid_var, 1e-4)
    theta_mu, theta_sigma = theta.mean(0), np.maximum(theta.std(0), MIN_SIGMA)
    for _ in range(EB_ROUNDS):
        theta, cov = store_posterior(xtx, xty, noise, theta_mu, theta_sigma)
        theta_mu = theta.mean(0)
        post_var = np.diagonal(cov, axis1=1, axis2=2)
        theta_sigma = np.maximum(np.sqrt(((theta - theta_mu) ** 2 + post_var).mean(0)), MIN_SIGMA)
    return theta, cov, theta_mu, theta_sigma, resid_var


def store_posterior(xtx, xty, noise, mu, sigma):
    """Posterior means (S, F) and covariances (S, F, F) of theta_s ~ N(mu, sigma^2) given
    log y = x theta_s + N(0, noise): X'X (S, F, F), X'y (S, F), noise () or per store (S,)."""
    noise = np.asarray(noise)[..., None]
    cov = np.linalg.inv(xtx / noise[..., None] + np.diag(1.0 / sigma**2))
    cov = 0.5 * (cov + cov.transpose(0, 2, 1))  # exactly symmetric for the Cholesky factor
    return np.einsum("sfg,sg->sf", cov, xty / noise + mu / sigma**2), cov


def whitening(theta, cov, mu, sigma) -> Whitening:
    """The basis in which the Gaussian N(theta, cov) of a store's coefficients, given the chain's
    mean mu and spread sigma, is white; its mean moves with the chain's mean by cov diag(1/sigma^2)
    (the posterior mean's derivative in mu)."""
    shift = cov / (sigma**2)[None, None, :]
    offset = theta - np.einsum("sfg,g->sf", shift, mu)
    return Whitening(offset.astype(np.float32), shift.astype(np.float32), np.linalg.cholesky(cov).astype(np.float32))


def moderated_variance(resid_var: np.ndarray, counts: np.ndarray, n_features: int) -> np.ndarray:
    """Residual variances pulled toward the typical store's, with the weight of n_features days.

    A store with few days is fitted almost exactly by its own regression, so its raw residual
    variance is far too small; taken as the noise level, it would make the start (and the guide's
    whitening) trust those few days as if they were noise-free. Variance moderation as in limma.
    """
    typical = (
        float(np.median(resid_var[counts > 2 * n_features]))
        if np.any(counts > 2 * n_features)
        else float(np.median(resid_var))
    )
    return (counts * resid_var + n_features * typical) / (counts + n_features)


def log64(y: np.ndarray) -> np.ndarray:
    return np.log(y.astype(np.float64))


def per_store_log_linear(cells: Cells, n_stores: int, n_features: int):
    """Per-store ridge estimates (S, F) of log sales and residual variances (S,), pulled toward the
    pooled estimate as fit_log_linear's are, in one pass over blocks of stores. The pooled estimate
    only sets where a store's ridge pulls (with one day's weight), so it comes from STORE_BLOCK
    (about) stores spread evenly over all of them: its standard error is then already far below the
    spread between stores."""
    cells = store_sorted(cells)
    counts = store_sums(cells.store, n_stores)
    first = np.concatenate([[0], np.cumsum(counts)])
    sample = np.arange(0, n_stores, max(1, n_stores // STORE_BLOCK))
    picked = np.concatenate([np.arange(first[s], first[s + 1]) for s in sample])  # the sample's cells
    xtx, xty, _ = normal_equations(
        np.repeat(np.arange(len(sample)), counts[sample]),
        cells.index[picked],
        cells.value[picked],
        log64(cells.y[picked]),
        len(sample),
        n_features,
    )
    pooled = ridge(xtx.sum(0), xty.sum(0), POOLED_PENALTY, np.zeros(n_features))
    theta, resid_var = np.zeros((n_stores, n_features)), np.zeros(n_stores)

    def fit_stores(stores: range) -> None:
        part = slice(int(first[stores.start]), int(first[stores.stop]))  # their cells, read in place
        blocks = sorted_store_blocks(
            counts[stores.start : stores.stop], cells.index[part], cells.value[part], cells.y[part], n_features, log64
        )
        for block in blocks:
            rows = slice(stores.start + block.stores.start, stores.start + block.stores.stop)
            xtx, xty = block_equations(block)
            theta[rows] = ridge(xtx, xty, STORE_PENALTY, pooled)
            resid_var[rows] = residual_variance(block, theta[rows])

    # NumPy's indexing and LAPACK's solves release the GIL: one share of the stores per core
    shares = np.linspace(0, n_stores, START_THREADS + 1).astype(int)
    with ThreadPoolExecutor(START_THREADS) as pool:
        list(pool.map(fit_stores, [range(a, b) for a, b in itertools.pairwise(shares)]))
    return theta, resid_var
