"""What the priors say before any fit: density curves and a prior predictive check.

The Model & fit page draws it. The prior predictive draws the model's hyper-parameters and
per-store coefficients from the priors and evaluates the linear predictor on observed cells of the
cube, giving the expected daily sales exp(eta) the priors imply, to hold
against the range of the data. The Gamma-Poisson noise is left out: next to the orders of
magnitude that loose priors span it is invisible.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import numpy as np
import pandas as pd
from numpyro import handlers

from bhm_core.data.cells import observed_cells
from bhm_core.data.cube import SalesCube
from bhm_core.model.config import EffectPrior, Priors
from bhm_core.model.hierarchy import HANDLERS_LOCK, linear_predictor, prior_arrays, sample_latents, store_coefficients

LN10 = math.log(10)


def normal_pdf(x, loc, scale):
    return np.exp(-0.5 * ((x - loc) / scale) ** 2) / (scale * math.sqrt(2 * math.pi))


def mean_curve(loc: float, scale: float, n: int = 241) -> pd.DataFrame:
    """Density of theta ~ Normal(loc, scale), with the multiplicative effect exp(theta)."""
    theta = np.linspace(loc - 4 * scale, loc + 4 * scale, n)
    return pd.DataFrame({"theta": theta, "multiplier": np.exp(theta), "density": normal_pdf(theta, loc, scale)})


def spread_curve(scale: float, n: int = 161) -> pd.DataFrame:
    """Density of sigma ~ HalfNormal(scale) on [0, 3.5 scale]."""
    sigma = np.linspace(0, 3.5 * scale, n)
    return pd.DataFrame({"sigma": sigma, "density": 2 * normal_pdf(sigma, 0.0, scale)})


def interval(prior: EffectPrior, level: float = 0.9) -> tuple[float, float]:
    """Central interval of exp(theta_mu) under the prior (the multiplicative group mean)."""
    z = {0.5: 0.6745, 0.8: 1.2816, 0.9: 1.6449, 0.95: 1.96}[level]
    return math.exp(prior.mu_loc - z * prior.mu_scale), math.exp(prior.mu_loc + z * prior.mu_scale)


def typical_spread(prior: EffectPrior) -> float:
    """Median of theta_sigma ~ HalfNormal(sigma_scale)."""
    return 0.6745 * prior.sigma_scale


def prior_predictive(
    cube: SalesCube, priors: Priors, *, n_draws: int = 200, cells_per_draw: int = 250, seed: int = 0
) -> np.ndarray:
    """log10 of the expected daily sales exp(eta) on random observed cells, one prior draw each.

    Each draw runs the model's own latent sites under the priors (`hierarchy.sample_latents`) for
    the stores of its cells, so a store keeps its coefficients within a draw, and reads eta off
    `cell_laws`, as a fit would.
    """
    cells = observed_cells(cube)
    prior = prior_arrays(priors, cube.design.groups)
    pick = np.random.default_rng(seed).integers(0, len(cells.y), (n_draws, cells_per_draw))
    with HANDLERS_LOCK:  # a first call traces the model under NumPyro's handlers
        theta = store_coefficients(_prior_latents(jax.random.PRNGKey(seed), prior, cells_per_draw, n_draws))
    eta = []
    for draw, at in enumerate(pick):
        _, store = np.unique(cells.store[at], return_inverse=True)  # the draw's stores, numbered from 0
        eta.append(linear_predictor(np.asarray(theta[draw]), store, cells.index[at], cells.value[at]))
    return (np.stack(eta) / LN10).ravel()


@partial(jax.jit, static_argnums=(2, 3))
def _prior_latents(key, prior, n_stores: int, n_draws: int) -> dict:
    def one(k):
        return handlers.seed(sample_latents, k)(prior, n_stores)

    return jax.vmap(one)(jax.random.split(key, n_draws))


def observed_log10(cube: SalesCube, max_cells: int = 50_000, seed: int = 0) -> np.ndarray:
    sales = cube.sales[cube.observed].astype(np.float64)
    if len(sales) > max_cells:
        sales = np.random.default_rng(seed).choice(sales, max_cells, replace=False)
    return np.log10(sales)


def coverage(prior_log10: np.ndarray, observed: np.ndarray) -> dict:
    """Share of prior draws inside the data's central 98% range, and the prior's own 5-95% range."""
    lo, hi = np.percentile(observed, [1, 99])
    inside = float(np.mean((prior_log10 >= lo) & (prior_log10 <= hi)))
    below = float(np.mean(prior_log10 < lo))
    p5, p50, p95 = np.percentile(prior_log10, [5, 50, 95])
    return {
        "data_lo": 10**lo,
        "data_hi": 10**hi,
        "inside": inside,
        "below": below,
        "above": 1 - inside - below,
        "prior_p5": 10**p5,
        "prior_median": 10**p50,
        "prior_p95": 10**p95,
    }


def data_centred_weekday(cube: SalesCube) -> float:
    """log of the median observed daily sales: a weekday mu_loc that centres the prior on the data."""
    sales = cube.sales[cube.observed]
    return round(float(np.log(np.median(sales))), 2) if sales.size else 0.0
