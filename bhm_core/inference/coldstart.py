"""Fits derived from a fit: new stores under a frozen hierarchy, and a fit's posterior as priors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bhm_core.data.cells import observed_cells
from bhm_core.data.cube import SalesCube
from bhm_core.data.features import GROUPS
from bhm_core.errors import DataError
from bhm_core.inference import optim
from bhm_core.inference.fit import fit
from bhm_core.inference.state import COEFFICIENT_SHOCK_SD, DAY_SHOCK_SD, FitResult, FitState
from bhm_core.model import guide
from bhm_core.model.config import EffectPrior, FitConfig, Priors
from bhm_core.model.hierarchy import prior_arrays
from bhm_core.model.lsq import normal_equations
from bhm_core.model.start import absent_global_params, new_store_params, store_posterior, whitening


def fit_new_stores(
    global_fit: FitResult,
    cube: SalesCube,
    config: FitConfig | None = None,
    *,
    stores_seen=None,
    on_progress=None,
    should_stop=None,
) -> FitResult:
    """Fit only the local parameters of the cube's stores, the global posterior frozen.

    The new stores start at the prior (the local sites at zero with unit width, their whitening the
    Gaussian approximation of their posterior under the frozen hyper-parameters); the
    hyper-parameters are drawn from the global fit's guide at every step without being trained.
    stores_seen: per feature, how many of the hierarchy's stores had days with it
    (data.cells.stores_per_feature); where that is too few, `pooled_hyper` replaces what the
    hierarchy could not learn.
    """
    if tuple(global_fit.feature_names) != tuple(cube.feature_names):
        raise DataError(
            f"the new stores' features {list(cube.feature_names)} differ from the fit's "
            f"{list(global_fit.feature_names)}; use the same FeatureSpec and store variants"
        )
    config = replace(config or FitConfig(), likelihood=global_fit.config.likelihood)
    locals_ = new_store_params(cube.n_stores, len(global_fit.feature_names))
    hyper = {k: global_fit.params[k] for k in guide.global_sites() if k in global_fit.params}
    hyper.update(absent_global_params(hyper, len(global_fit.feature_names)))
    if stores_seen is not None:
        hyper = pooled_hyper(global_fit, hyper, np.asarray(stores_seen))
    params = {
        **hyper,
        **locals_,
        guide.basis_name(guide.whitened_site()): _new_store_basis(global_fit, hyper, cube),
    }
    start = FitResult(
        FitState(params, optim.init_state(config.optimizer, locals_), np.int32(0)),
        guide.local_sites(),
        np.zeros(0),
        cube.store_ids,
        global_fit.feature_names,
        global_fit.feature_groups,
        global_fit.priors,
        config,
        cube.fingerprint,
    )
    result = fit(
        cube,
        config,
        global_fit.priors,
        init=start,
        trainable=guide.local_sites(),
        on_progress=on_progress,
        should_stop=should_stop,
    )
    # A few new stores' known days cannot measure chain-wide shocks, nor the error they leave in
    # the chain's coefficients (which the hierarchy's fit measured); the chain's fit did.
    result.meta[DAY_SHOCK_SD] = global_fit.day_shock_sd
    result.meta[COEFFICIENT_SHOCK_SD] = global_fit.coefficient_shock_sd.tolist()
    return result


MIN_POOL_STORES = 3  # stores that must show a feature before the hierarchy's spread of it counts


def pooled_hyper(global_fit: FitResult, hyper: dict, stores_seen: np.ndarray) -> dict:
    """The hierarchy's hyper-parameters as a new store's prior, where they carry information.

    A feature none of the hierarchy's stores had keeps, in the hierarchy's guide, the start's
    value: a chain mean at the prior's centre and a spread near zero. There is no intercept, so for
    a level of a one-hot group (an unseen weekday, holiday level or store variant) that centre means
    "sales of about 1 a day", held with certainty: a new store open on a Sunday or a holiday, or of
    a variant the hierarchy lacks, was forecast far off, and its own days could not correct it. So
    an unseen level takes the level the group's effects are read against (FeatureGroup.contrast:
    the first seen weekday, no holiday, the average seen variant), i.e. "no effect". A spread that
    fewer than MIN_POOL_STORES stores measured takes the group's typical measured spread (else the
    chain's), so the new store's own days decide such an effect.
    """
    loc_mu = np.asarray(hyper["theta_mu"].loc, np.float64).copy()
    sigma = np.exp(np.asarray(hyper["theta_sigma"].loc, np.float64))
    seen, pinned = stores_seen > 0, stores_seen >= MIN_POOL_STORES
    groups = np.asarray(global_fit.feature_groups)
    prior = prior_arrays(global_fit.priors, tuple(global_fit.feature_groups))
    typical = float(np.median(sigma[pinned])) if pinned.any() else None
    new_sigma = sigma.copy()
    for group in dict.fromkeys(global_fit.feature_groups):
        levels = np.flatnonzero(groups == group)
        unseen = levels[~seen[levels]]
        loc_mu[unseen] = _reference_level(group, levels, seen, loc_mu, prior.mu_loc)[~seen[levels]]
        in_group = sigma[levels[pinned[levels]]]
        spread = float(np.median(in_group)) if in_group.size else typical
        loose = levels[~pinned[levels]]
        if spread is not None:
            new_sigma[loose] = np.maximum(sigma[loose], spread)
    theta_mu, theta_sigma = hyper["theta_mu"], hyper["theta_sigma"]
    return {
        **hyper,
        "theta_mu": theta_mu._replace(loc=loc_mu.astype(np.float32)),
        "theta_sigma": theta_sigma._replace(loc=np.log(new_sigma).astype(np.float32)),
    }


def _reference_level(group: str, levels: np.ndarray, seen: np.ndarray, loc_mu: np.ndarray, mu_loc) -> np.ndarray:
    """Per level of the group, the chain mean an unseen level falls back to (FeatureGroup.contrast)."""
    kind = GROUPS[group].contrast if group in GROUPS else "each"
    known = levels[seen[levels]]
    if kind == "reference" and known.size:
        return np.full(levels.size, loc_mu[known[0]])
    if kind == "first" and seen[levels[0]]:
        return np.full(levels.size, loc_mu[levels[0]])
    if kind == "average" and known.size and levels.size > 1:
        return np.full(levels.size, loc_mu[known].mean())
    return np.asarray(mu_loc, np.float64)[levels]


def _new_store_basis(global_fit: FitResult, hyper: dict, cube: SalesCube) -> guide.Whitening:
    """New stores' z guide starts at the Gaussian approximation of their posterior under the frozen
    hyper-parameters: a log-linear fit shrunk toward the hyper-means, and its covariance.

    On the log scale a cell's noise variance is the likelihood's log variance at the cells' mean,
    so the prior N(mu, sigma^2) acts as a ridge penalty (noise variance / sigma^2) per feature. Few
    known days stay near mu, with the prior's width.
    """
    cells = observed_cells(cube)
    centre = guide.guide_centre(hyper)
    mu = centre["theta_mu"].astype(np.float64)
    sigma = centre["theta_sigma"].astype(np.float64)
    noise = float(np.mean(global_fit.likelihood.log_variance(cells.y, float(centre["r_mu"]))))
    xtx, xty, _ = normal_equations(cells.store, cells.index, cells.value, np.log(cells.y), cube.n_stores, len(mu))
    theta, cov = store_posterior(xtx, xty, noise, mu, sigma)
    return whitening(theta, cov, mu, sigma)


def priors_from_posterior(result: FitResult, inflate: float = 2.0) -> Priors:
    """Priors centred on a fitted posterior, per feature group, scales widened by `inflate`.

    Group means of the hyper-means become mu_loc; their spread and posterior uncertainty give
    mu_scale; the fitted per-store spreads give sigma_scale. Used to seed a fit of a new region.
    """
    loc_mu, log_scale_mu = result.params["theta_mu"]
    # the chain means' uncertainty: the guide's, and the error the training days' shared shocks left
    variance_mu = np.exp(2 * np.asarray(log_scale_mu, np.float64)) + result.coefficient_shock_sd.astype(np.float64) ** 2
    centre = guide.guide_centre(result.params)
    sigma = centre["theta_sigma"]
    groups = np.asarray(result.feature_groups)
    changes = {}
    for group in dict.fromkeys(result.feature_groups):
        sel = groups == group
        spread = np.sqrt(np.var(loc_mu[sel]) + np.mean(variance_mu[sel]))
        changes[group] = EffectPrior(
            mu_loc=float(np.mean(loc_mu[sel])),
            mu_scale=float(np.clip(inflate * spread, 1e-3, 100)),
            sigma_scale=float(np.clip(inflate * np.mean(sigma[sel]), 1e-3, 100)),
        )
    r_loc, r_log_scale = result.params["r_mu"]
    return replace(
        result.priors,
        **changes,
        r_mu_loc=float(np.clip(r_loc, -20, 20)),
        r_mu_scale=float(np.clip(inflate * np.exp(r_log_scale), 1e-3, 100)),
        r_sigma_scale=float(np.clip(inflate * centre["r_sigma"], 1e-3, 100)),
    )
