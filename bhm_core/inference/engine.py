"""Fitting: pack the cube into cells, start near the optimum, run jitted SVI in chunks.

Compile once: the cells, the priors and every numeric setting are arguments of one ahead-of-time
compiled chunk runner; only shapes (bucketed) and structure (optimizer, schedule kind, particles,
chunk length, which sites train) pick a different program. Programs are kept in memory per process
and on disk through JAX's persistent compilation cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bhm_core.data.cube import SalesCube
from bhm_core.errors import DataError, FitDivergedError
from bhm_core.inference.optim import AdamState, adam_init, adam_update, clip_by_global_norm, schedule_factor
from bhm_core.inference.packing import FitData, StorePacked, batch_of, observed_cells, pack, pack_by_store
from bhm_core.inference.sharding import alignment, constrain, n_devices, place, shardings_of, store_mesh, to_host
from bhm_core.model.config import EffectPrior, FitConfig, Priors
from bhm_core.model.hierarchy import (
    BASIS,
    GLOBAL_SITES,
    LOCAL_SITES,
    PER_STORE,
    ModelData,
    SiteParams,
    Whitening,
    identity_whitening,
    negative_elbo,
    prior_arrays,
    unwhiten,
)
from bhm_core.model.lsq import normal_equations
from bhm_core.model.start import INITIAL_LOG_SCALE, initial_params, store_posterior, whitening

DAY_SHOCK_SD = "day_shock_sd"  # FitResult.meta key: sd of chain-wide day shocks (day_shock_sd)
MIN_SHOCK_STORES = 5  # stores a day needs to estimate its shock
MIN_SHOCK_DAYS = 28  # such days a fit needs to estimate the shocks' spread
MAX_SHOCK_STORES = 4096  # stores read for the estimate (bounded cost at scale)
COMPILE_COUNT = {"n": 0}  # programs built by this process (tests assert no recompilation)
_PROGRAMS: dict = {}


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path:
    """Persist compiled programs so that a restarted app or CLI does not compile again."""
    path = Path(
        directory or os.environ.get("BHM_JAX_CACHE") or Path(__file__).resolve().parent.parent / "data" / "jax_cache"
    )
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


# ----------------------------------------------------------------------------------------------
# Padding


def pad_locals(params: dict, s_pad: int) -> dict:
    """Pad per-store guide entries to the store bucket (padding stores sit at the prior, with an
    identity whitening)."""
    out = dict(params)
    for name in PER_STORE:
        if name in params:
            site = params[name]
            extra = s_pad - site[0].shape[0]
            if name == BASIS:
                n_features = site.center.shape[1]
                padding = identity_whitening(extra, n_features)
            else:
                padding = [np.zeros((extra, *a.shape[1:]), a.dtype) for a in site]
            out[name] = type(site)(*(np.concatenate([a, b]) for a, b in zip(site, padding)))
    return out


def trim_locals(tree, n_stores: int):
    return {name: type(site)(*(a[:n_stores] if name in PER_STORE else a for a in site)) for name, site in tree.items()}


# ----------------------------------------------------------------------------------------------
# The compiled chunk runner


class Hyper(NamedTuple):
    """Numeric settings, traced: changing them never recompiles."""

    lr: jnp.ndarray
    final_fraction: jnp.ndarray
    clip_norm: jnp.ndarray
    schedule_start: jnp.ndarray  # optimizer step at which this run's schedule starts
    schedule_steps: jnp.ndarray  # length of this run's schedule
    warmup_steps: jnp.ndarray  # the rate ramps up linearly over this run's first steps
    n_steps: jnp.ndarray  # steps to run in this chunk (<= chunk length)


class ChunkOut(NamedTuple):
    params: dict
    opt_state: AdamState
    losses: jnp.ndarray  # (chunk length,), NaN past the steps run
    diverged_at: jnp.ndarray  # () int32 global step of the first non-finite loss, -1 if none


def _batch_params(params: dict, rows) -> dict:
    return {n: type(p)(*(a[rows] for a in p)) if n in PER_STORE else p for n, p in params.items()}


def _take_rows(tree: dict, rows) -> dict:
    """Local sites at the given store rows (out-of-range rows read a clamped row, never used)."""
    return {n: type(p)(*(a.at[rows].get(mode="clip") for a in p)) if n in PER_STORE else p for n, p in tree.items()}


def _put_rows(tree: dict, rows, new: dict) -> dict:
    """Write the batch's local rows back (out-of-range rows are dropped); globals are replaced."""
    return {
        n: type(tree[n])(*(a.at[rows].set(b, mode="drop") for a, b in zip(tree[n], new[n])))
        if n in PER_STORE
        else new[n]
        for n in tree
    }


def _unique_rows(rows, fill):
    """Sorted distinct rows padded with `fill` (out of range), and each row's position among them."""
    unique, inverse = jnp.unique(rows, size=rows.shape[0], return_inverse=True, fill_value=fill)
    return unique, inverse.reshape(-1)


def _run_chunk(
    params, opt_state, fixed, key, data, prior, hyper, *, chunk, schedule, clipped, particles, batch, mesh=None
):
    """Up to `chunk` SVI steps (hyper.n_steps of them); stops early at a non-finite loss.

    batch=None: data is ModelData over all cells. batch=B: data is StorePacked; each step draws B
    store rows with replacement and reads, differentiates and updates only those rows (their
    local parameters and Adam moments, gathered once per distinct row): a step's work and memory
    grow with B, not with the number of stores, and stores outside the batch are untouched.
    mesh: the device mesh the arguments are split over (layout only; see sharding.py).
    """

    def loss_fn(trainable, frozen, step_key, step_data, inverse):
        merged = {**jax.lax.stop_gradient(frozen), **trainable}
        if inverse is not None:
            merged = _batch_params(merged, inverse)
        return negative_elbo(merged, step_key, step_data, prior, particles=particles)

    value_and_grad = jax.value_and_grad(loss_fn)

    def body(carry):
        i, params, state, losses, diverged_at = carry
        batch_key, elbo_key = jax.random.split(jax.random.fold_in(key, state.step))
        if batch is None:
            sub, sub_fixed, sub_state, step_data, inverse = params, fixed, state, data, None
        else:
            rows = jax.random.randint(batch_key, (batch,), 0, data.n_stores)
            unique, inverse = _unique_rows(rows, data.y.shape[0])
            sub, sub_fixed = _take_rows(params, unique), _take_rows(fixed, unique)
            sub_state = AdamState(state.step, _take_rows(state.mu, unique), _take_rows(state.nu, unique))
            step_data = jax.tree.map(lambda a: constrain(a, mesh) if a.ndim else a, batch_of(data, rows))
        loss, grads = value_and_grad(sub, sub_fixed, elbo_key, step_data, inverse)
        if clipped:
            grads = clip_by_global_norm(grads, hyper.clip_norm)
        finite = jnp.isfinite(loss) & jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        progress = (state.step - hyper.schedule_start).astype(jnp.float32) / jnp.maximum(hyper.schedule_steps, 1)
        warmup = jnp.minimum(
            1.0, (state.step - hyper.schedule_start + 1).astype(jnp.float32) / jnp.maximum(hyper.warmup_steps, 1)
        )
        lr = hyper.lr * warmup * schedule_factor(schedule, progress, hyper.final_fraction)
        new_sub, new_state = adam_update(sub, grads, sub_state, lr)

        def keep(new, old):
            return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)

        new_sub, new_state = keep(new_sub, sub), keep(new_state, sub_state)
        if batch is None:
            new_params = new_sub
        else:
            new_params = _put_rows(params, unique, new_sub)
            new_state = AdamState(
                new_state.step, _put_rows(state.mu, unique, new_state.mu), _put_rows(state.nu, unique, new_state.nu)
            )
        diverged_at = jnp.where(finite, diverged_at, state.step + 1)
        return i + 1, new_params, new_state, losses.at[i].set(loss), diverged_at

    def cond(carry):
        i, _, _, _, diverged_at = carry
        return (i < hyper.n_steps) & (diverged_at < 0)

    init = (jnp.int32(0), params, opt_state, jnp.full((chunk,), jnp.nan, jnp.float32), jnp.int32(-1))
    _, params, opt_state, losses, diverged_at = jax.lax.while_loop(cond, body, init)
    return ChunkOut(params, opt_state, losses, diverged_at)


def _signature(a):
    dtype = a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype  # never copies device arrays
    return np.shape(a), np.dtype(dtype).str


def _data_plan(batch):
    if batch is None:
        return ModelData(*(True,) * 6, False, False)  # cells split; store mask and scale replicated
    return StorePacked(*(True,) * 5, False)  # rows of stores split


def _split_plan(args, batch):
    """Per leaf of the chunk runner's arguments: split over the stores axis (True) or replicate."""
    train, opt_state, fixed, _key, _data, prior, hyper = args

    def sites(tree):
        return {n: type(site)(*(batch is not None and n in PER_STORE,) * len(site)) for n, site in tree.items()}

    return (
        sites(train),
        AdamState(False, sites(opt_state.mu), sites(opt_state.nu)),
        sites(fixed),
        False,
        _data_plan(batch),
        jax.tree.map(lambda _: False, prior),
        jax.tree.map(lambda _: False, hyper),
    )


def _program(args, static: dict):
    """AOT-compiled chunk runner for these shapes and this structure; (program, compile seconds).

    The parameters and Adam state (arguments 0 and 1) are donated: each chunk updates them in
    place instead of copying (S, F) arrays.
    """
    shapes = jax.tree.map(_signature, args)
    key = (str(shapes), tuple(sorted(static.items(), key=lambda kv: kv[0])))
    if key in _PROGRAMS:
        return _PROGRAMS[key], 0.0
    start = time.perf_counter()
    mesh = static.get("mesh")
    options = {}
    if mesh is not None:
        plan = _split_plan(args, static["batch"])
        options["in_shardings"] = tuple(shardings_of(p, mesh) for p in plan)
        options["out_shardings"] = ChunkOut(
            options["in_shardings"][0], options["in_shardings"][1], shardings_of(False, mesh), shardings_of(False, mesh)
        )
    program = jax.jit(partial(_run_chunk, **static), donate_argnums=(0, 1), **options).lower(*args).compile()
    COMPILE_COUNT["n"] += 1
    _PROGRAMS[key] = program
    return program, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, eq=False)
class FitResult:
    params: dict  # site -> SiteParams (numpy), locals trimmed to the fitted stores
    opt_state: AdamState  # numpy; step count and moments for warm starts
    losses: np.ndarray  # (steps done,) negative ELBO per step
    store_ids: np.ndarray
    feature_names: tuple
    feature_groups: tuple
    priors: Priors
    config: FitConfig
    data_fingerprint: str
    meta: dict = field(default_factory=dict)  # seconds, compile_seconds, steps, final_loss, ...

    @property
    def day_shock_sd(self) -> float:
        """sd of the chain-wide day shocks forecasts draw (`day_shock_sd`); 0 for older fits."""
        return float(self.meta.get(DAY_SHOCK_SD, 0.0))

    @property
    def final_loss(self) -> float:
        finite = self.losses[np.isfinite(self.losses)]
        return float(np.mean(finite[-20:])) if finite.size else float("nan")


def _to_numpy(tree):
    return jax.tree.map(to_host, tree)


def fit(
    cube: SalesCube,
    config: FitConfig | None = None,
    priors: Priors | None = None,
    *,
    rng_key=None,
    init: FitResult | None = None,
    trainable: tuple = GLOBAL_SITES + LOCAL_SITES,
    on_progress: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    devices=None,
) -> FitResult:
    """Fit the model to the cube's observed cells.

    init: a previous FitResult on the same stores and features to continue from (Adam's step count
    and moments continue); sites not in `trainable` keep init's guide (cold start freezes globals).
    on_progress(step, loss) runs between chunks; should_stop() returning True ends the fit there.
    devices: None (one default device), a number of devices, a list of devices or a Mesh with a
    'stores' axis: the fit is split over them (see sharding.py); the result does not depend on it
    beyond float rounding.
    """
    _check_origin_inside(cube)
    return fit_cells(
        FitData.from_cube(cube),
        config,
        priors,
        rng_key=rng_key,
        init=init,
        trainable=trainable,
        on_progress=on_progress,
        should_stop=should_stop,
        devices=devices,
    )


def _theta_at_centre(params: dict) -> np.ndarray:
    """(S, F) each store's coefficients at the guide's centre (theta_sigma at its median)."""
    z = np.asarray(unwhiten(params.get(BASIS), params["z"].loc))
    return params["theta_mu"].loc + np.exp(params["theta_sigma"].loc) * z


def day_shock_sd(params: dict, cells, chunk: int = 1 << 20) -> float:
    """The spread (sd, log scale) of the chain-wide day-to-day swings the features leave over.

    Every store misses the same days together (weather, events): the per-cell observation law
    treats these swings as independent noise, which is right for one store-day but makes the sum
    over stores far too certain. Each day's mean log residual over its stores (at the posterior
    centre) estimates that day's shock; their robust spread (1.4826 x MAD, as the shocks are
    heavy-tailed: holidays the features miss), less the part due to the stores' own noise, is
    the sd. Forecasts draw one shock per date from it, shared by all stores (predict.py). 0 when
    fewer than MIN_SHOCK_DAYS days have MIN_SHOCK_STORES stores. Only the first MAX_SHOCK_STORES
    stores are read: a day's mean over thousands of stores is as good as over a million.
    """
    theta = _theta_at_centre(params)
    positive = np.flatnonzero((cells.y > 0) & (cells.store < MAX_SHOCK_STORES))
    residual = np.empty(positive.size)
    for start in range(0, positive.size, chunk):
        at = positive[start : start + chunk]
        eta = (theta[cells.store[at, None], cells.index[at]] * cells.value[at]).sum(-1)
        residual[start : start + chunk] = np.log(cells.y[at]) - eta
    day = cells.day[positive]
    count = np.bincount(day)
    enough = count >= MIN_SHOCK_STORES
    if enough.sum() < MIN_SHOCK_DAYS:
        return 0.0
    n = count[enough]
    mean = np.bincount(day, residual)[enough] / n
    within = np.bincount(day, residual**2)[enough] / n - mean**2
    spread = 1.4826 * np.median(np.abs(mean - np.median(mean)))
    return float(np.sqrt(max(spread**2 - np.median(within / np.maximum(n - 1, 1)), 0.0)))


def _check_origin_inside(cube: SalesCube) -> None:
    """A fit must see its cube's origin when features depend on it: the yearly profiles and the
    recent level are computed from the days up to it (and the trend's knots count from it), so a
    cube cut before it would learn from days it is not shown."""
    last = cube.dates[-1]
    origin = np.asarray(cube.covariates.origin, dtype="datetime64[D]")
    groups = cube.spec.origin_groups()
    if groups and (origin > last).any():
        raise DataError(
            f"the training days end on {last} but the features {', '.join(groups)} were "
            f"computed up to {origin.max()} (the cube's origin); call "
            f"cube.with_origin('{last}') before select_days, as a backtest does, so "
            f"that nothing after {last} leaks in"
        )


def fit_cells(
    data: FitData,
    config: FitConfig | None = None,
    priors: Priors | None = None,
    *,
    rng_key=None,
    init: FitResult | None = None,
    trainable: tuple = GLOBAL_SITES + LOCAL_SITES,
    on_progress: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    devices=None,
) -> FitResult:
    """`fit` on observed cells without a cube (virtual and synthetic series at scale); same options."""
    config = config or FitConfig()
    priors = priors or Priors()
    rng_key = jax.random.PRNGKey(config.seed) if rng_key is None else rng_key
    started = time.perf_counter()
    mesh = store_mesh(devices)
    batch = None if config.batch_size is None or config.batch_size >= data.n_stores else config.batch_size
    prior = prior_arrays(priors, data.feature_groups)
    if init is not None:
        _check_compatible(init, data)
    params = (
        init.params if init is not None else initial_params(data.cells, data.n_stores, data.n_features, config, prior)
    )
    prepared = time.perf_counter()
    packed = _pack_on_devices(data, batch, mesh)  # the data stay on the device(s) across chunks
    s_pad = (packed.store_mask if batch is None else packed.y).shape[0]
    params = pad_locals(params, s_pad)
    train = {k: v for k, v in params.items() if k in trainable}
    fixed = {k: v for k, v in params.items() if k not in trainable}
    opt_state = None if init is None else init.opt_state
    if opt_state is None or set(opt_state.mu) != set(train):
        opt_state = adam_init(train)
    else:
        opt_state = AdamState(opt_state.step, pad_locals(opt_state.mu, s_pad), pad_locals(opt_state.nu, s_pad))
    # A warm start runs a fresh schedule over its own steps while Adam's step count continues.
    hyper = Hyper(
        np.float32(config.learning_rate),
        np.float32(config.final_lr_fraction),
        np.float32(config.clip_norm),
        np.int32(int(opt_state.step)),
        np.int32(config.steps),
        np.int32(config.warmup_steps),
        np.int32(config.chunk_steps),
    )
    plan = _split_plan((train, opt_state, fixed, rng_key, packed, prior, hyper), batch)
    train, opt_state, fixed, rng_key, prior = place(
        (train, opt_state, fixed, rng_key, prior), mesh, plan[:4] + plan[5:6]
    )
    static = {
        "chunk": config.chunk_steps,
        "schedule": config.schedule,
        "clipped": config.optimizer == "clipped_adam",
        "particles": config.particles,
        "batch": batch,
        "mesh": mesh,
    }
    args = (train, opt_state, fixed, rng_key, packed, prior, hyper)
    program, compile_seconds = _program(args, static)
    timing = {
        "started": started,
        "compile_seconds": compile_seconds,
        "prepare_seconds": time.perf_counter() - started - compile_seconds,
        "init_seconds": prepared - started,
    }
    return _run(
        program,
        args,
        data,
        priors,
        config,
        timing,
        on_progress,
        should_stop,
        {"devices": n_devices(mesh), "batch_size": batch},
    )


def _pack_on_devices(data: FitData, batch, mesh):
    """Pack the cells and move them to the device(s). Store minibatches: `pack_by_store` places
    each field as it is built, so the host holds at most one packed field besides the cells.
    Full batch: `pack` builds every field on the host first, and each is dropped once placed."""

    def put(array, split):
        return place(array, mesh, split)

    if batch is not None:
        return pack_by_store(data.cells, data.n_stores, alignment(mesh), put=put)
    fields = list(pack(data.cells, data.n_stores, alignment(mesh)))
    for i, split in enumerate(_data_plan(batch)):
        fields[i] = put(fields[i], split)  # drops the host copy of this field
    return ModelData(*fields)


def _run(program, args, data, priors, config, timing, on_progress, should_stop, extra) -> FitResult:
    """Run the compiled chunks until config.steps, a cancel, or a non-finite loss."""
    train, opt_state, fixed, rng_key, packed, prior, hyper = args
    del args
    start_step = int(hyper.schedule_start)
    losses, done, cancelled = [], 0, False
    run_started = time.perf_counter()
    while done < config.steps:
        n = min(config.chunk_steps, config.steps - done)
        out = program(train, opt_state, fixed, rng_key, packed, prior, hyper._replace(n_steps=np.int32(n)))
        chunk_losses = np.asarray(out.losses)[:n]
        diverged_at = int(out.diverged_at)
        if diverged_at >= 0:
            good = chunk_losses[np.isfinite(chunk_losses)]
            losses.extend(good.tolist())
            last_good = _result(
                data,
                out.params,
                fixed,
                out.opt_state,
                losses,
                priors,
                config,
                timing,
                {"diverged_at": diverged_at, **extra},
            )
            raise FitDivergedError(
                f"the fit diverged at step {diverged_at}: the loss became non-finite. Lower the "
                f"learning rate (now {config.learning_rate:g}), use clipped_adam, or check the "
                f"priors; the parameters of step {diverged_at - 1} were kept.",
                step=diverged_at,
                last_good=last_good,
            )
        train, opt_state = out.params, out.opt_state
        losses.extend(chunk_losses.tolist())
        done += n
        if on_progress is not None:
            on_progress(start_step + done, float(chunk_losses[-1]))
        if should_stop is not None and done < config.steps and should_stop():
            cancelled = True
            break
    run_seconds = time.perf_counter() - run_started
    return _result(
        data,
        train,
        fixed,
        opt_state,
        losses,
        priors,
        config,
        timing,
        {
            "cancelled": cancelled,
            "run_seconds": run_seconds,
            "seconds_per_step": run_seconds / max(len(losses), 1),
            **extra,
        },
    )


def _check_compatible(init: FitResult, data: FitData) -> None:
    if tuple(init.feature_names) != tuple(data.feature_names) or not np.array_equal(init.store_ids, data.store_ids):
        raise DataError("cannot continue this fit: it was made for other stores or features; start a new fit instead")


def _result(data: FitData, train, fixed, opt_state, losses, priors, config, timing, extra) -> FitResult:
    n = data.n_stores
    params = trim_locals(_to_numpy({**fixed, **train}), n)
    state = _to_numpy(opt_state)
    state = AdamState(state.step, trim_locals(state.mu, n), trim_locals(state.nu, n))
    losses = np.asarray(losses, np.float64)
    meta = {
        "seconds": time.perf_counter() - timing["started"],
        "compile_seconds": timing["compile_seconds"],
        "prepare_seconds": timing["prepare_seconds"],
        "init_seconds": timing["init_seconds"],
        "steps": int(state.step),
        "steps_this_run": len(losses),
        "final_loss": float(np.mean(losses[-20:])) if len(losses) else float("nan"),
        "n_cells": len(data.cells.y),
        DAY_SHOCK_SD: day_shock_sd(params, data.cells),
        **data.info,
        **extra,
    }
    return FitResult(
        params,
        state,
        losses,
        np.array(data.store_ids, copy=True),
        tuple(data.feature_names),
        tuple(data.feature_groups),
        priors,
        config,
        data.fingerprint,
        meta,
    )


# ----------------------------------------------------------------------------------------------
# Derived fits: cold start and posterior-as-prior


def fit_new_stores(
    global_fit: FitResult,
    cube: SalesCube,
    config: FitConfig | None = None,
    *,
    rng_key=None,
    on_progress=None,
    should_stop=None,
) -> FitResult:
    """Fit only the local parameters of the cube's stores, the global posterior frozen.

    The new stores start at the prior (z = 0, w = 0, unit scale) and the hyper-parameters are drawn
    from the global fit's guide at every step without being trained.
    """
    if tuple(global_fit.feature_names) != tuple(cube.feature_names):
        raise DataError(
            f"the new stores' features {list(cube.feature_names)} differ from the fit's "
            f"{list(global_fit.feature_names)}; use the same FeatureSpec and store variants"
        )
    n_stores, n_features = cube.n_stores, len(global_fit.feature_names)
    locals_ = {
        "z": SiteParams(np.zeros((n_stores, n_features), np.float32), np.zeros((n_stores, n_features), np.float32)),
        "w": SiteParams(np.zeros(n_stores, np.float32), np.full(n_stores, INITIAL_LOG_SCALE, np.float32)),
    }
    basis = {BASIS: _new_store_basis(global_fit, cube)}
    params = {**{k: global_fit.params[k] for k in GLOBAL_SITES}, **locals_, **basis}
    start = FitResult(
        params,
        adam_init(locals_),
        np.zeros(0),
        cube.store_ids,
        global_fit.feature_names,
        global_fit.feature_groups,
        global_fit.priors,
        config or FitConfig(),
        cube.fingerprint,
    )
    result = fit(
        cube,
        config,
        global_fit.priors,
        rng_key=rng_key,
        init=start,
        trainable=LOCAL_SITES,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    # A few new stores' known days cannot measure chain-wide shocks; the chain's fit did.
    result.meta[DAY_SHOCK_SD] = global_fit.day_shock_sd
    return result


def _new_store_basis(global_fit: FitResult, cube: SalesCube) -> Whitening:
    """New stores' z guide starts at the Gaussian approximation of their posterior under the frozen
    hyper-parameters: a log-linear fit shrunk toward the hyper-means, and its covariance.

    On the log scale a cell's noise variance is about (1 + e^r) / mean, so the prior N(mu, sigma^2)
    acts as a ridge penalty (noise variance / sigma^2) per feature. Few known days stay near mu,
    with the prior's width.
    """
    cells = observed_cells(cube)
    mu = global_fit.params["theta_mu"].loc.astype(np.float64)
    sigma = np.exp(global_fit.params["theta_sigma"].loc.astype(np.float64))
    noise = (1 + np.exp(float(global_fit.params["r_mu"].loc))) * np.mean(1.0 / cells.y)
    xtx, xty, _ = normal_equations(cells.store, cells.index, cells.value, np.log(cells.y), cube.n_stores, len(mu))
    theta, cov = store_posterior(xtx, xty, noise, mu, sigma)
    return whitening(theta, cov, mu, sigma)


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
        r_sigma_scale=float(np.clip(inflate * np.exp(result.params["r_sigma"].loc), 1e-3, 100)),
    )
