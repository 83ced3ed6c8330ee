"""The Gamma-Poisson hierarchical regression: one model function, a mean-field guide derived from it.

Data reach the model as flat arrays over *cells* (observed store-days, padded to a bucket size so
similar-sized problems share one compiled program). Closed days and days without a row never become
cells; padding cells carry ``cell_mask = False`` and are masked out with ``numpyro.handlers.mask``.
Forecasts read the observation law off the same model's trace (see predict.py).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpyro.infer.util import log_density

from bhm_core.data.features import FEATURE_GROUPS
from bhm_core.model.config import Priors

GLOBAL_SITES = ("theta_mu", "theta_sigma", "r_mu", "r_sigma")
LOCAL_SITES = ("z", "w")
BASIS = "z_basis"  # per-store whitening of z's guide (never trained), see Whitening
PER_STORE = (*LOCAL_SITES, BASIS)  # guide entries with one row per store
POSITIVE_SITES = ("theta_sigma", "r_sigma")


def nb_log_prob(log_mean, log_dispersion, y, lgamma_y1):
    """log NB(y | mean, Var = mean (1 + e^r)): concentration a = mean e^-r, rate e^-r.

    XLA's own lgamma is kept: Stirling series with a shift measured 3x faster alone but twice as
    slow inside the compiled SVI step, where it fuses worse.
    """
    a = jnp.exp(log_mean - log_dispersion)
    return gammaln(y + a) - gammaln(a) - lgamma_y1 - a * log_dispersion - (a + y) * jnp.log1p(jnp.exp(-log_dispersion))


class NegBinomialMean(dist.GammaPoisson):
    """Gamma-Poisson parameterised by its log mean and log-dispersion r: Var = mean (1 + exp(r)).

    Same law as GammaPoisson(mean * exp(-r), exp(-r)). log_prob is `nb_log_prob`, taking the linear
    predictor directly and lgamma(y + 1), a constant of the data, precomputed when given.
    """

    def __init__(self, log_mean, log_dispersion, lgamma_y1=None, *, validate_args=None):
        self.log_mean = log_mean
        self.log_dispersion = log_dispersion
        self.lgamma_y1 = lgamma_y1
        super().__init__(jnp.exp(log_mean - log_dispersion), jnp.exp(-log_dispersion), validate_args=validate_args)

    def log_prob(self, value):
        const = gammaln(value + 1.0) if self.lgamma_y1 is None else self.lgamma_y1
        return nb_log_prob(self.log_mean, self.log_dispersion, value, const)


class ModelData(NamedTuple):
    cell_store: jnp.ndarray  # (N,) int32 row into the store arrays
    cell_index: jnp.ndarray  # (N, K) int32 feature column per slot
    cell_value: jnp.ndarray  # (N, K) float32
    y: jnp.ndarray  # (N,) float32 sales (a placeholder when forecasting)
    lgamma_y1: jnp.ndarray  # (N,) float32 lgamma(y + 1), computed once
    cell_mask: jnp.ndarray  # (N,) bool: False for padding
    store_mask: jnp.ndarray  # (S,) bool: False for padding stores
    scale: jnp.ndarray  # () float32: likelihood / local-prior rescaling for store minibatches


class PriorArrays(NamedTuple):
    """Priors as arrays, so changing a prior value never recompiles."""

    mu_loc: jnp.ndarray  # (F,)
    mu_scale: jnp.ndarray  # (F,)
    sigma_scale: jnp.ndarray  # (F,)
    r_mu_loc: jnp.ndarray
    r_mu_scale: jnp.ndarray
    r_sigma_scale: jnp.ndarray
    w_scale: jnp.ndarray


def prior_arrays(priors: Priors, groups: tuple) -> PriorArrays:
    """Expand per-group priors to one value per feature (groups: the design's group of each feature)."""
    unknown = set(groups) - set(FEATURE_GROUPS)
    if unknown:
        raise ValueError(f"features of unknown group(s) {sorted(unknown)}")
    per_feature = [getattr(priors, g) for g in groups]
    f32 = np.float32
    return PriorArrays(
        mu_loc=np.array([p.mu_loc for p in per_feature], f32),
        mu_scale=np.array([p.mu_scale for p in per_feature], f32),
        sigma_scale=np.array([p.sigma_scale for p in per_feature], f32),
        r_mu_loc=f32(priors.r_mu_loc),
        r_mu_scale=f32(priors.r_mu_scale),
        r_sigma_scale=f32(priors.r_sigma_scale),
        w_scale=f32(priors.w_scale),
    )


def linear_predictor(theta, cell_store, cell_index, cell_value):
    """eta per cell: a gather of K coefficients, not a dense dot product."""
    return (theta[cell_store[:, None], cell_index] * cell_value).sum(-1)


def model(data: ModelData, prior: PriorArrays):
    n_stores = data.store_mask.shape[0]
    n_features = prior.mu_loc.shape[0]
    theta_mu = numpyro.sample("theta_mu", dist.Normal(prior.mu_loc, prior.mu_scale).to_event(1))
    theta_sigma = numpyro.sample("theta_sigma", dist.HalfNormal(prior.sigma_scale).to_event(1))
    r_mu = numpyro.sample("r_mu", dist.Normal(prior.r_mu_loc, prior.r_mu_scale))
    r_sigma = numpyro.sample("r_sigma", dist.HalfNormal(prior.r_sigma_scale))
    with (
        numpyro.plate("stores", n_stores),
        numpyro.handlers.scale(scale=data.scale),
        numpyro.handlers.mask(mask=data.store_mask),
    ):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_features]).to_event(1))
        w = numpyro.sample("w", dist.Normal(0.0, prior.w_scale))
    theta = theta_mu + theta_sigma * z
    r = (r_mu + r_sigma * w)[data.cell_store]
    log_mu = linear_predictor(theta, data.cell_store, data.cell_index, data.cell_value)
    with (
        numpyro.plate("cells", data.cell_store.shape[0]),
        numpyro.handlers.scale(scale=data.scale),
        numpyro.handlers.mask(mask=data.cell_mask),
    ):
        numpyro.sample("y", NegBinomialMean(log_mu, r, data.lgamma_y1), obs=data.y)


# ----------------------------------------------------------------------------------------------
# Guide: independent Normals per latent in unconstrained space (log for positive sites), for z in
# the whitened coordinates of its Whitening basis, so that z's guide is correlated within a store.


class SiteParams(NamedTuple):
    loc: jnp.ndarray
    log_scale: jnp.ndarray


class Whitening(NamedTuple):
    """A fixed affine map per store for z's guide: z_s = center_s + chol_s u_s, u_s ~ N(loc, scale^2).

    The guide stays a product of independent Normals, but over u, the coordinates in which the
    start's Gaussian approximation of each store's posterior (empirical Bayes on log sales, see
    start.py) is white. Two things follow. The guide represents the strong posterior correlations
    between a store's effects (its weekday, holiday and store-type terms all shift its level), which
    a mean-field guide on z itself cannot: its widths would shrink to conditional ones and its
    intervals under-cover. And SVI on u is well conditioned, so it converges in far fewer steps.
    """

    center: jnp.ndarray  # (S, F)
    chol: jnp.ndarray  # (S, F, F) lower triangular, positive diagonal


def identity_whitening(n_stores: int, n_features: int) -> Whitening:
    return Whitening(
        np.zeros((n_stores, n_features), np.float32),
        np.broadcast_to(np.eye(n_features, dtype=np.float32), (n_stores, n_features, n_features)).copy(),
    )


def to_constrained(name, u):
    return jnp.exp(u) if name in POSITIVE_SITES else u


def to_unconstrained(name, x):
    return jnp.log(x) if name in POSITIVE_SITES else x


def unwhiten(basis: Whitening | None, u):
    """z from the whitened coordinates u (..., S, F); identity without a basis."""
    if basis is None:
        return u
    return basis.center + jnp.einsum("sfg,...sg->...sf", basis.chol, u)


def guide_draw(name: str, site: SiteParams, eps, basis: Whitening | None = None):
    """Site `name`'s guide draw from standard normals `eps` (leading sample axes allowed):
    (u, the latent's constrained value), u being the Normal's draw, whitened for z."""
    u = site.loc + jnp.exp(site.log_scale) * eps
    return u, to_constrained(name, unwhiten(basis, u) if name == "z" else u)


def sample_guide(params: dict, key, local_scale=1.0):
    """Draw one set of latents by reparameterisation.

    Returns (constrained values, log q(latents)). Local sites' terms are multiplied by
    `local_scale`, matching the model's rescaled local priors when the params hold a store batch.
    """
    values, log_q = {}, 0.0
    basis = params.get(BASIS)
    sites = sorted(name for name in params if name != BASIS)
    keys = jax.random.split(key, len(sites))
    for k, name in zip(keys, sites):
        site = params[name]
        eps = jax.random.normal(k, site.loc.shape)
        u, values[name] = guide_draw(name, site, eps, basis)
        # log N(u; loc, scale), minus log|dx/du|: u for the exp transform of positive sites,
        # log|chol| for the whitening of z
        term = jnp.sum(-0.5 * eps**2 - site.log_scale - 0.5 * jnp.log(2 * jnp.pi))
        if name in POSITIVE_SITES:
            term = term - jnp.sum(u)
        if name == "z" and basis is not None:
            term = term - jnp.sum(jnp.log(jnp.diagonal(basis.chol, axis1=-2, axis2=-1)))
        log_q = log_q + (term * local_scale if name in LOCAL_SITES else term)
    return values, log_q


def negative_elbo(params: dict, key, data: ModelData, prior: PriorArrays, particles: int = 1):
    def one(k):
        values, log_q = sample_guide(params, k, local_scale=data.scale)
        log_p, _ = log_density(model, (data, prior), {}, values)
        return log_q - log_p

    if particles == 1:  # vmap over one particle batches the gathers and triples the step time
        return one(key)
    return jnp.mean(jax.lax.map(one, jax.random.split(key, particles)))
