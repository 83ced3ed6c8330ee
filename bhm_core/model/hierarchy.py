"""The hierarchical regression, stated once.

For store s and cell (store-day) t with slot-coded features x_st:

    theta_mu_j ~ Normal(mu_loc_j, mu_scale_j)          theta_sigma_j ~ HalfNormal(sigma_scale_j)
    r_mu ~ Normal(r_mu_loc, r_mu_scale)                r_sigma ~ HalfNormal(r_sigma_scale)
    z_sj ~ Normal(0, 1)                                 w_s ~ Normal(0, w_scale)
    phi_j ~ Normal(0, phi_scale_j)                     (phi_scale_j: DISPERSION_EFFECT_SCALE on the
    theta_s = theta_mu + theta_sigma * z_s              weekday and promo features, NO_EFFECT_SCALE
    r_s = r_mu + r_sigma * w_s                          on the others, which keeps those at 0)
    eta_st = x_st . theta_s                            y_st ~ likelihood(eta_st, r_s + x_st . phi)

where x_st . phi runs over the slots of the weekday and promo groups only (`dispersion_slots`):
the other features' phi_j stay at their prior, and reading twenty slots for a handful of free
offsets would cost a third of an SVI step.

phi (the site ``r_effects``) moves every store's log-dispersion with the weekday and promo: a
Gamma-Poisson's relative variance (1 + e^r) / mean falls as the mean rises, while on Rossmann the
spread of log sales is highest on Mondays and Saturdays, the days of the highest and the lowest
mean (residual sd 0.109 / 0.107 against 0.096 midweek over the year to 2015-06-19), and falls less
on promo days than the law says (0.096 against 0.106, where the law gives 0.090). With one r_s per
store, the 2015-06-19 backtest's 50% / 90% intervals held 0.45 / 0.85 of Mondays' sales and
0.54 / 0.92 of Wednesdays'; with phi 0.51 / 0.90 and 0.51 / 0.90. Offsets on every feature were
tried too: closure windows and holidays took offsets near +1, the usual days' dispersion fell, and
the intervals held 0.47 / 0.85 overall.

`model` is the NumPyro program; the guide (guide.py) is derived from its sites. Everything else
that needs a store's coefficients or a cell's law (prediction, effects, streaming summaries, prior
checks, the start, the day-shock estimate, the synthetic series at scale) calls the functions the
model itself uses, `store_parameters` (or `store_coefficients` where only theta matters) and
`cell_laws` (`grid_laws`: the same on a store x day design, for many draws of it), so the maths
above lives here only. They work on NumPy and JAX arrays alike and
accept leading sample axes.

Data reach the model as flat arrays over cells (observed store-days, padded to a bucket size so
similar-sized problems share one compiled program). Closed days and days without a row never become
cells; padding cells carry ``cell_mask = False`` and are masked out.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bhm_core.data.features import FEATURE_GROUPS
from bhm_core.model.config import Priors
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL, Likelihood

STORES_PLATE = "stores"  # the plate of per-store (local) latents
CELLS_PLATE = "cells"
# The per-store coefficients in standardised form: their posterior is strongly correlated within a
# store, so the guide gives this site a per-store whitening basis (guide.py, start.py).
WHITEN = {"whiten": True}
DISPERSION_EFFECT_SCALE = 0.3  # prior sd of a chain-wide log-dispersion offset (phi) ...
DISPERSION_GROUPS = ("weekday", "promo")  # ... on the features of these groups
NO_EFFECT_SCALE = 1e-3  # the prior sd that keeps the other features' offsets at 0


class ModelData(NamedTuple):
    cell_store: jnp.ndarray  # (N,) int32 row into the store arrays
    cell_index: jnp.ndarray  # (N, K) int32 feature column per slot
    cell_value: jnp.ndarray  # (N, K) float32
    y: jnp.ndarray  # (N,) float32 sales (a placeholder when forecasting)
    y_constant: jnp.ndarray  # (N,) float32 the likelihood's constant of y (Likelihood.cell_constant)
    cell_mask: jnp.ndarray  # (N,) bool: False for padding
    store_mask: jnp.ndarray  # (S,) bool: False for padding stores
    scale: jnp.ndarray  # () float32: likelihood / local-prior rescaling for store minibatches
    dispersion_slots: jnp.ndarray  # (D,) int32 the slots the dispersion's offsets read (dispersion_slots)


class PriorArrays(NamedTuple):
    """Priors as arrays, so changing a prior value never recompiles."""

    mu_loc: jnp.ndarray  # (F,)
    mu_scale: jnp.ndarray  # (F,)
    sigma_scale: jnp.ndarray  # (F,)
    r_mu_loc: jnp.ndarray
    r_mu_scale: jnp.ndarray
    r_sigma_scale: jnp.ndarray
    w_scale: jnp.ndarray
    phi_scale: jnp.ndarray  # (F,) the prior sd of each feature's chain-wide log-dispersion offset


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
        phi_scale=np.array(
            [DISPERSION_EFFECT_SCALE if g in DISPERSION_GROUPS else NO_EFFECT_SCALE for g in groups], f32
        ),
    )


class StoreParameters(NamedTuple):
    theta: object  # (..., S, F) coefficients on the log scale
    r: object  # (..., S) the likelihood's dispersion parameter
    r_effects: object = None  # (..., F) the chain's log-dispersion offsets per feature (None: none)


def store_coefficients(latents: dict):
    """theta (..., S, F): each store's coefficients from the latents (leading sample axes allowed)."""
    return latents["theta_mu"][..., None, :] + latents["theta_sigma"][..., None, :] * latents["z"]


def store_dispersions(latents: dict):
    """r (..., S): each store's dispersion parameter from the latents."""
    return latents["r_mu"][..., None] + latents["r_sigma"][..., None] * latents["w"]


def store_parameters(latents: dict) -> StoreParameters:
    return StoreParameters(store_coefficients(latents), store_dispersions(latents), latents.get("r_effects"))


def chain_mean(latents: dict):
    """(..., F) the chain's mean coefficients, the centre the stores' coefficients spread around."""
    return latents["theta_mu"]


def standardised(theta, latents: dict):
    """z (..., S, F) that gives these coefficients under the latents' hyper-parameters (the inverse of
    `store_coefficients`)."""
    return (theta - latents["theta_mu"][..., None, :]) / latents["theta_sigma"][..., None, :]


def standardised_log_jacobian(latents: dict):
    """log |dz / dtheta| of `standardised`, per store (every store's alike)."""
    return -jnp.sum(jnp.log(latents["theta_sigma"]), -1)[..., None]


def linear_predictor(theta, cell_store, cell_index, cell_value):
    """eta per cell, (..., N): a gather of the K slot coefficients, not a dense dot product.

    theta (..., S, F); cell_store (N,); cell_index and cell_value (N, K). The gather reads theta
    flattened to (..., S * F) with one index per slot: XLA's one-index gather and its scatter-add
    transpose (the gradient) take half the time of the two-index form on a CPU."""
    n_stores, n_features = theta.shape[-2:]
    flat = cell_store[:, None] * n_features + cell_index
    return (theta.reshape(*theta.shape[:-2], n_stores * n_features)[..., flat] * cell_value).sum(-1)


def grid_linear_predictor(theta, index, value):
    """eta (..., S, T) on a store x day design: index and value (S, T, K), theta (..., S, F)."""
    n_stores, n_days, k = index.shape
    store = np.repeat(np.arange(n_stores), n_days)
    eta = linear_predictor(theta, store, index.reshape(-1, k).astype(np.int64), value.reshape(-1, k))
    return eta.reshape(*eta.shape[:-1], n_stores, n_days)


def dispersion_slots(slot_columns, feature_groups) -> np.ndarray:
    """(D,) int32 the slots holding features of DISPERSION_GROUPS, from any one cell's feature
    column per slot (K,): a slot's columns all belong to one group."""
    return np.array(
        [k for k, column in enumerate(np.asarray(slot_columns)) if feature_groups[int(column)] in DISPERSION_GROUPS],
        np.int32,
    )


def cell_laws(store: StoreParameters, cell_store, cell_index, cell_value, slots_of_dispersion):
    """(eta, dispersion) of each cell's law, (..., N) each. slots_of_dispersion: `dispersion_slots`."""
    eta = linear_predictor(store.theta, cell_store, cell_index, cell_value)
    dispersion = store.r[..., cell_store]
    if store.r_effects is not None:
        index, value = cell_index[:, slots_of_dispersion], cell_value[:, slots_of_dispersion]
        dispersion = dispersion + (store.r_effects[..., index] * value).sum(-1)
    return eta, dispersion


def grid_laws(store: StoreParameters, index, value, slots_of_dispersion):
    """`cell_laws` on a store x day design shared by every leading draw: (eta, dispersion) (..., S, T)
    from index and value (S, T, K).

    The same maths, with eta as a matrix product of each draw's coefficients and the design's dense
    rows (S, T, F) (each slot's value added at its column): with hundreds of draws of one design,
    ~4x faster on a CPU than gathering the K slot coefficients per draw and cell."""
    n_stores, n_days, _ = index.shape
    rows = jnp.zeros((n_stores, n_days, store.theta.shape[-1]), jnp.float32)
    rows = rows.at[jnp.arange(n_stores)[:, None, None], jnp.arange(n_days)[None, :, None], index].add(value)
    eta = jnp.einsum("stf,...sf->...st", rows, store.theta)
    dispersion = jnp.broadcast_to(store.r[..., :, None], eta.shape)
    if store.r_effects is not None:
        slot_index, slot_value = index[..., slots_of_dispersion], value[..., slots_of_dispersion]
        dispersion = dispersion + (store.r_effects[..., slot_index] * slot_value).sum(-1)
    return eta, dispersion


def sample_latents(prior: PriorArrays, n_stores: int, scale=1.0, store_mask=True) -> dict:
    """The model's latent sites (the hyper-parameters, then the stores' plate); their values."""
    n_features = prior.mu_loc.shape[0]
    latents = {
        "theta_mu": numpyro.sample("theta_mu", dist.Normal(prior.mu_loc, prior.mu_scale).to_event(1)),
        "theta_sigma": numpyro.sample("theta_sigma", dist.HalfNormal(prior.sigma_scale).to_event(1)),
        "r_mu": numpyro.sample("r_mu", dist.Normal(prior.r_mu_loc, prior.r_mu_scale)),
        "r_sigma": numpyro.sample("r_sigma", dist.HalfNormal(prior.r_sigma_scale)),
        "r_effects": numpyro.sample("r_effects", dist.Normal(0.0, prior.phi_scale).to_event(1)),
    }
    with (
        numpyro.plate(STORES_PLATE, n_stores),
        numpyro.handlers.scale(scale=scale),
        numpyro.handlers.mask(mask=store_mask),
    ):
        latents["z"] = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_features]).to_event(1), infer=WHITEN)
        latents["w"] = numpyro.sample("w", dist.Normal(0.0, prior.w_scale))
    return latents


def model(data: ModelData, prior: PriorArrays, likelihood: Likelihood = NEGATIVE_BINOMIAL):
    latents = sample_latents(prior, data.store_mask.shape[0], data.scale, data.store_mask)
    eta, dispersion = cell_laws(
        store_parameters(latents), data.cell_store, data.cell_index, data.cell_value, data.dispersion_slots
    )
    with (
        numpyro.plate(CELLS_PLATE, data.cell_store.shape[0]),
        numpyro.handlers.scale(scale=data.scale),
        numpyro.handlers.mask(mask=data.cell_mask),
    ):
        numpyro.sample("y", likelihood.distribution(eta, dispersion, data.y_constant), obs=data.y)
