"""Fitting: pack the cube into cells, start near the optimum, run jitted SVI in chunks.

Compile once: the cells, the priors and every numeric setting are arguments of one ahead-of-time
compiled chunk runner; only shapes (bucketed) and structure (optimizer, schedule kind, particles,
chunk length, which sites train) pick a different program. Programs are kept in memory per process
and on disk through JAX's persistent compilation cache.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .config import EffectPrior, FitConfig, Priors
from .cube import SalesCube
from .errors import DataError, FitDivergedError
from .lsq import fit_log_linear, normal_equations, ridge
from .packing import Cells, StorePacked, batch_of, observed_cells, pack, pack_by_store
from .model import (GLOBAL_SITES, LOCAL_SITES, ModelData, SiteParams, negative_elbo, prior_arrays,
                    to_unconstrained)
from .optim import AdamState, adam_init, adam_update, clip_by_global_norm, schedule_factor

INITIAL_LOG_SCALE = math.log(0.05)
COMPILE_COUNT = {"n": 0}  # programs built by this process (tests assert no recompilation)
_PROGRAMS: dict = {}


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path:
    """Persist compiled programs so that a restarted app or CLI does not compile again."""
    path = Path(directory or os.environ.get("BHM_JAX_CACHE") or
                Path(__file__).resolve().parent.parent / "data" / "jax_cache")
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


# ----------------------------------------------------------------------------------------------
# Starting point

def initial_params(cells: Cells, n_stores: int, n_features: int, config: FitConfig, priors_arr) -> dict:
    """Guide locations from per-store ridge regression on log sales (or the prior means)."""
    if config.init == "least_squares":
        _, theta, resid_var = fit_log_linear(cells.store, cells.index, cells.value, cells.y,
                                             n_stores, n_features)
        theta_mu = theta.mean(0)
        theta_sigma = np.maximum(theta.std(0), 0.05)
        z = (theta - theta_mu) / theta_sigma
        # Var[y] = mu (1 + e^r); on the log scale Var[log y] ~ (1 + e^r) / mu
        mean_y = np.bincount(cells.store, weights=cells.y, minlength=n_stores) / np.maximum(
            np.bincount(cells.store, minlength=n_stores), 1)
        r_store = np.log(np.clip(resid_var * np.maximum(mean_y, 1.0) - 1.0, 1.0, 1e6))
        r_mu = float(np.median(r_store))
        r_sigma = max(float(r_store.std()) / float(priors_arr.w_scale), 0.1)
        w = np.clip((r_store - r_mu) / r_sigma, -3 * float(priors_arr.w_scale), 3 * float(priors_arr.w_scale))
    else:
        theta_mu = np.asarray(priors_arr.mu_loc, np.float64)
        theta_sigma = np.full(n_features, 0.5)
        z = np.zeros((n_stores, n_features))
        r_mu, r_sigma, w = float(priors_arr.r_mu_loc), 0.5, np.zeros(n_stores)
    values = {"theta_mu": theta_mu, "theta_sigma": theta_sigma, "r_mu": np.asarray(r_mu),
              "r_sigma": np.asarray(r_sigma), "z": z, "w": w}
    return {name: SiteParams(np.asarray(to_unconstrained(name, np.asarray(v)), np.float32),
                             np.full(np.shape(v), INITIAL_LOG_SCALE, np.float32))
            for name, v in values.items()}


def pad_locals(params: dict, s_pad: int) -> dict:
    """Pad per-store guide parameters to the store bucket (padding stores sit at the prior)."""
    out = dict(params)
    for name in LOCAL_SITES:
        if name in params:
            loc, log_scale = params[name]
            extra = s_pad - loc.shape[0]
            out[name] = SiteParams(np.concatenate([loc, np.zeros((extra, *loc.shape[1:]), loc.dtype)]),
                                   np.concatenate([log_scale, np.zeros((extra, *loc.shape[1:]),
                                                                       log_scale.dtype)]))
    return out


def trim_locals(tree, n_stores: int):
    return {name: SiteParams(*(a[:n_stores] if name in LOCAL_SITES else a for a in site))
            for name, site in tree.items()}


# ----------------------------------------------------------------------------------------------
# The compiled chunk runner

class Hyper(NamedTuple):
    """Numeric settings, traced: changing them never recompiles."""

    lr: jnp.ndarray
    final_fraction: jnp.ndarray
    clip_norm: jnp.ndarray
    schedule_start: jnp.ndarray  # optimizer step at which this run's schedule starts
    schedule_steps: jnp.ndarray  # length of this run's schedule
    n_steps: jnp.ndarray         # steps to run in this chunk (<= chunk length)


class ChunkOut(NamedTuple):
    params: dict
    opt_state: AdamState
    losses: jnp.ndarray        # (chunk length,), NaN past the steps run
    diverged_at: jnp.ndarray   # () int32 global step of the first non-finite loss, -1 if none


def _batch_params(params: dict, rows) -> dict:
    return {n: SiteParams(p.loc[rows], p.log_scale[rows]) if n in LOCAL_SITES else p
            for n, p in params.items()}


def _keep_untouched_rows(new, old, rows):
    """Store minibatches: local parameters (and their Adam moments) of stores outside the batch
    stay exactly as they were."""
    touched = jnp.zeros(next(iter(old[n].loc for n in LOCAL_SITES if n in old)).shape[0], bool).at[rows].set(True)

    def pick(name, a, b):
        if name not in LOCAL_SITES:
            return a
        mask = touched.reshape(touched.shape + (1,) * (a.ndim - 1))
        return jnp.where(mask, a, b)

    return {n: SiteParams(pick(n, new[n].loc, old[n].loc), pick(n, new[n].log_scale, old[n].log_scale))
            for n in new}


def _run_chunk(params, opt_state, fixed, key, data, prior, hyper, *, chunk, schedule, clipped,
               particles, batch):
    """Up to `chunk` SVI steps (hyper.n_steps of them); stops early at a non-finite loss.

    batch=None: data is ModelData over all cells. batch=B: data is StorePacked and each step
    draws B store rows with replacement.
    """
    def loss_fn(trainable, step_key, rows):
        merged = {**jax.lax.stop_gradient(fixed), **trainable}
        if rows is None:
            return negative_elbo(merged, step_key, data, prior, particles=particles)
        return negative_elbo(_batch_params(merged, rows), step_key, batch_of(data, rows), prior,
                             particles=particles)

    value_and_grad = jax.value_and_grad(loss_fn)

    def body(carry):
        i, params, state, losses, diverged_at = carry
        batch_key, elbo_key = jax.random.split(jax.random.fold_in(key, state.step))
        rows = None if batch is None else jax.random.randint(batch_key, (batch,), 0, data.n_stores)
        loss, grads = value_and_grad(params, elbo_key, rows)
        if clipped:
            grads = clip_by_global_norm(grads, hyper.clip_norm)
        finite = jnp.isfinite(loss) & jnp.all(jnp.array(
            [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        progress = (state.step - hyper.schedule_start).astype(jnp.float32) / jnp.maximum(
            hyper.schedule_steps, 1)
        lr = hyper.lr * schedule_factor(schedule, progress, hyper.final_fraction)
        new_params, new_state = adam_update(params, grads, state, lr)
        if rows is not None:
            new_state = AdamState(new_state.step, _keep_untouched_rows(new_state.mu, state.mu, rows),
                                  _keep_untouched_rows(new_state.nu, state.nu, rows))
            new_params = _keep_untouched_rows(new_params, params, rows)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        diverged_at = jnp.where(finite, diverged_at, state.step + 1)
        return (i + 1, keep(new_params, params), keep(new_state, state), losses.at[i].set(loss),
                diverged_at)

    def cond(carry):
        i, _, _, _, diverged_at = carry
        return (i < hyper.n_steps) & (diverged_at < 0)

    init = (jnp.int32(0), params, opt_state, jnp.full((chunk,), jnp.nan, jnp.float32), jnp.int32(-1))
    _, params, opt_state, losses, diverged_at = jax.lax.while_loop(cond, body, init)
    return ChunkOut(params, opt_state, losses, diverged_at)


def _program(args, static: dict):
    """AOT-compiled chunk runner for these shapes and this structure; (program, compile seconds)."""
    shapes = jax.tree.map(lambda a: (np.shape(a), np.asarray(a).dtype.str), args)
    key = (str(shapes), tuple(sorted(static.items())))
    if key in _PROGRAMS:
        return _PROGRAMS[key], 0.0
    start = time.perf_counter()
    program = jax.jit(partial(_run_chunk, **static)).lower(*args).compile()
    COMPILE_COUNT["n"] += 1
    _PROGRAMS[key] = program
    return program, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Results

@dataclass(frozen=True, eq=False)
class FitResult:
    params: dict                 # site -> SiteParams (numpy), locals trimmed to the fitted stores
    opt_state: AdamState         # numpy; step count and moments for warm starts
    losses: np.ndarray           # (steps done,) negative ELBO per step
    store_ids: np.ndarray
    feature_names: tuple
    feature_groups: tuple
    priors: Priors
    config: FitConfig
    data_fingerprint: str
    meta: dict = field(default_factory=dict)  # seconds, compile_seconds, steps, final_loss, ...

    @property
    def final_loss(self) -> float:
        finite = self.losses[np.isfinite(self.losses)]
        return float(np.mean(finite[-20:])) if finite.size else float("nan")


def _to_numpy(tree):
    return jax.tree.map(np.asarray, tree)


def fit(cube: SalesCube, config: FitConfig | None = None, priors: Priors | None = None, *,
        rng_key=None, init: FitResult | None = None, trainable: tuple = GLOBAL_SITES + LOCAL_SITES,
        on_progress: Callable[[int, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None) -> FitResult:
    """Fit the model to the cube's observed cells.

    init: a previous FitResult on the same stores and features to continue from (Adam's step count
    and moments continue); sites not in `trainable` keep init's guide (cold start freezes globals).
    on_progress(step, loss) runs between chunks; should_stop() returning True ends the fit there.
    """
    config = config or FitConfig()
    priors = priors or Priors()
    rng_key = jax.random.PRNGKey(config.seed) if rng_key is None else rng_key
    started = time.perf_counter()
    cells = observed_cells(cube)
    prior = prior_arrays(priors, cube.design.groups)
    if config.batch_size is None or config.batch_size >= cube.n_stores:
        batch, data = None, pack(cells, cube.n_stores)
        s_pad = data.store_mask.shape[0]
    else:
        batch, data = config.batch_size, pack_by_store(cells, cube.n_stores)
        s_pad = data.y.shape[0]
    if init is not None:
        _check_compatible(init, cube)
        params, opt_state = init.params, init.opt_state
    else:
        params = initial_params(cells, cube.n_stores, cube.design.n_features, config, prior)
        opt_state = None
    params = pad_locals(params, s_pad)
    train = {k: v for k, v in params.items() if k in trainable}
    fixed = {k: v for k, v in params.items() if k not in trainable}
    if opt_state is None or set(opt_state.mu) != set(train):
        opt_state = adam_init(train)
    else:
        opt_state = AdamState(opt_state.step, pad_locals(opt_state.mu, s_pad), pad_locals(opt_state.nu, s_pad))

    static = {"chunk": config.chunk_steps, "schedule": config.schedule,
              "clipped": config.optimizer == "clipped_adam", "particles": config.particles,
              "batch": batch}
    # A warm start runs a fresh schedule over its own steps while Adam's step count continues.
    start_step = int(opt_state.step)
    hyper = Hyper(np.float32(config.learning_rate), np.float32(config.final_lr_fraction),
                  np.float32(config.clip_norm), np.int32(start_step), np.int32(config.steps),
                  np.int32(config.chunk_steps))
    program, compile_seconds = _program((train, opt_state, fixed, rng_key, data, prior, hyper), static)

    losses, done, cancelled = [], 0, False
    while done < config.steps:
        n = min(config.chunk_steps, config.steps - done)
        out = program(train, opt_state, fixed, rng_key, data, prior, hyper._replace(n_steps=np.int32(n)))
        chunk_losses = np.asarray(out.losses)[:n]
        diverged_at = int(out.diverged_at)
        if diverged_at >= 0:
            good = chunk_losses[np.isfinite(chunk_losses)]
            losses.extend(good.tolist())
            last_good = _result(cube, out.params, fixed, out.opt_state, losses, priors, config,
                                started, compile_seconds, {"diverged_at": diverged_at})
            raise FitDivergedError(
                f"the fit diverged at step {diverged_at}: the loss became non-finite. Lower the "
                f"learning rate (now {config.learning_rate:g}), use clipped_adam, or check the "
                f"priors; the parameters of step {diverged_at - 1} were kept.",
                step=diverged_at, last_good=last_good)
        train, opt_state = out.params, out.opt_state
        losses.extend(chunk_losses.tolist())
        done += n
        if on_progress is not None:
            on_progress(start_step + done, float(chunk_losses[-1]))
        if should_stop is not None and done < config.steps and should_stop():
            cancelled = True
            break
    return _result(cube, train, fixed, opt_state, losses, priors, config, started, compile_seconds,
                   {"cancelled": cancelled})


def _check_compatible(init: FitResult, cube: SalesCube) -> None:
    if tuple(init.feature_names) != tuple(cube.feature_names) or not np.array_equal(
            init.store_ids, cube.store_ids):
        raise DataError("cannot continue this fit: it was made for other stores or features; "
                        "start a new fit instead")


def _result(cube, train, fixed, opt_state, losses, priors, config, started, compile_seconds,
            extra) -> FitResult:
    n = cube.n_stores
    params = trim_locals(_to_numpy({**fixed, **train}), n)
    state = _to_numpy(opt_state)
    state = AdamState(state.step, trim_locals(state.mu, n), trim_locals(state.nu, n))
    losses = np.asarray(losses, np.float64)
    meta = {"seconds": time.perf_counter() - started, "compile_seconds": compile_seconds,
            "steps": int(state.step), "steps_this_run": len(losses),
            "final_loss": float(np.mean(losses[-20:])) if len(losses) else float("nan"),
            "n_cells": int(cube.observed.sum()), "first_date": str(cube.dates[0]),
            "last_date": str(cube.dates[-1]), **extra}
    return FitResult(params, state, losses, cube.store_ids.copy(), tuple(cube.feature_names),
                     tuple(cube.design.groups), priors, config, cube.fingerprint, meta)


# ----------------------------------------------------------------------------------------------
# Derived fits: cold start and posterior-as-prior

def fit_new_stores(global_fit: FitResult, cube: SalesCube, config: FitConfig | None = None, *,
                   rng_key=None, on_progress=None, should_stop=None) -> FitResult:
    """Fit only the local parameters of the cube's stores, the global posterior frozen.

    The new stores start at the prior (z = 0, w = 0, unit scale) and the hyper-parameters are drawn
    from the global fit's guide at every step without being trained.
    """
    if tuple(global_fit.feature_names) != tuple(cube.feature_names):
        raise DataError(f"the new stores' features {list(cube.feature_names)} differ from the fit's "
                        f"{list(global_fit.feature_names)}; use the same FeatureSpec and store variants")
    n_stores, n_features = cube.n_stores, len(global_fit.feature_names)
    locals_ = {"z": SiteParams(_new_store_z(global_fit, cube),
                               np.full((n_stores, n_features), INITIAL_LOG_SCALE, np.float32)),
               "w": SiteParams(np.zeros(n_stores, np.float32), np.full(n_stores, INITIAL_LOG_SCALE, np.float32))}
    params = {**{k: global_fit.params[k] for k in GLOBAL_SITES}, **locals_}
    start = FitResult(params, adam_init(locals_), np.zeros(0), cube.store_ids, global_fit.feature_names,
                      global_fit.feature_groups, global_fit.priors, config or FitConfig(),
                      cube.fingerprint)
    return fit(cube, config, global_fit.priors, rng_key=rng_key, init=start, trainable=LOCAL_SITES,
               on_progress=on_progress, should_stop=should_stop)


def _new_store_z(global_fit: FitResult, cube: SalesCube) -> np.ndarray:
    """Start new stores at the approximate MAP of a log-linear fit shrunk toward the hyper-means.

    On the log scale a cell's noise variance is about (1 + e^r) / mean, so the prior N(mu, sigma^2)
    acts as a ridge penalty (noise variance / sigma^2) per feature. Few known days stay near mu.
    """
    cells = observed_cells(cube)
    mu = global_fit.params["theta_mu"].loc.astype(np.float64)
    sigma = np.exp(global_fit.params["theta_sigma"].loc.astype(np.float64))
    noise = (1 + np.exp(float(global_fit.params["r_mu"].loc))) * np.mean(1.0 / cells.y)
    xtx, xty, _ = normal_equations(cells.store, cells.index, cells.value, np.log(cells.y), cube.n_stores,
                                   len(mu))
    theta = ridge(xtx, xty, np.clip(noise / sigma**2, 1e-6, 1e6), mu)
    return ((theta - mu) / sigma).astype(np.float32)


def priors_from_posterior(result: FitResult, inflate: float = 2.0) -> Priors:
    """Priors centred on a fitted posterior, per feature group, scales widened by `inflate`.

    Group means of the hyper-means become mu_loc; their spread and posterior uncertainty give
    mu_scale; the fitted per-store spreads give sigma_scale. Used to seed a fit of a new region.
    """
    loc_mu, log_scale_mu = result.params["theta_mu"]
    sigma = np.exp(result.params["theta_sigma"].loc)
    groups = np.asarray(result.feature_groups)
    changes = {}
    for group in dict.fromkeys(result.feature_groups):
        sel = groups == group
        spread = np.sqrt(np.var(loc_mu[sel]) + np.mean(np.exp(2 * log_scale_mu[sel])))
        changes[group] = EffectPrior(mu_loc=float(np.mean(loc_mu[sel])),
                                     mu_scale=float(np.clip(inflate * spread, 1e-3, 100)),
                                     sigma_scale=float(np.clip(inflate * np.mean(sigma[sel]), 1e-3, 100)))
    r_loc, r_log_scale = result.params["r_mu"]
    return replace(result.priors, **changes, r_mu_loc=float(np.clip(r_loc, -20, 20)),
                   r_mu_scale=float(np.clip(inflate * np.exp(r_log_scale), 1e-3, 100)),
                   r_sigma_scale=float(np.clip(inflate * np.exp(result.params["r_sigma"].loc), 1e-3, 100)))
