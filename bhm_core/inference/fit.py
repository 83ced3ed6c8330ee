"""Fitting: pack the observed cells, start near the optimum, run the compiled chunks of SVI steps.

`fit(cube, ...)` is `fit_cells(FitData.from_cube(cube), ...)`; virtual and synthetic series at
scale build FitData without a cube. A fit continues from `init` (a previous FitResult on the same
stores and features: the optimizer's step count and moments continue) and may train only some
sites (a cold start freezes the hyper-parameters).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from bhm_core.data.cells import FitData
from bhm_core.data.cube import SalesCube
from bhm_core.errors import ConfigError, DataError, FitDivergedError
from bhm_core.inference import optim
from bhm_core.inference.packing import COARSE_CELLS, MIN_CELLS, pack, pack_by_store
from bhm_core.inference.programs import program
from bhm_core.inference.sharding import alignment, local_rows, n_devices, place, place_rows, store_mesh, to_host
from bhm_core.inference.shocks import active_days, coefficient_shock_sd, day_shock_sd, positive_cells
from bhm_core.inference.state import (
    COEFFICIENT_SHOCK_SD,
    DAY_SHOCK_SD,
    FitResult,
    FitState,
    map_per_store,
    pad_optimizer_state,
    pad_stores,
    trim_stores,
    zero_moments,
)
from bhm_core.inference.step import split_plan
from bhm_core.model import guide, likelihoods
from bhm_core.model.config import FitConfig, Priors
from bhm_core.model.hierarchy import ModelData, prior_arrays
from bhm_core.model.start import initial_params, whitens

Progress = Callable[[int, float], None]


def all_sites() -> tuple:
    return guide.global_sites() + guide.local_sites()


def fit(
    cube: SalesCube,
    config: FitConfig | None = None,
    priors: Priors | None = None,
    *,
    init: FitResult | None = None,
    trainable: tuple | None = None,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    devices=None,
) -> FitResult:
    """Fit the model to the cube's observed cells.

    init: a previous FitResult on the same stores and features to continue from; sites not in
    `trainable` (default: all) keep init's guide. on_progress(step, loss) runs between chunks;
    should_stop() returning True ends the fit there. devices: None (one default device), a number
    of devices, a list of devices or a Mesh with a 'stores' axis: the fit is split over them (see
    sharding.py); the result does not depend on it beyond float rounding. The random key comes
    from config.seed.
    """
    check_origin_inside(cube)
    return fit_cells(
        FitData.from_cube(cube),
        config,
        priors,
        init=init,
        trainable=trainable,
        on_progress=on_progress,
        should_stop=should_stop,
        devices=devices,
    )


def check_origin_inside(cube: SalesCube) -> None:
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
    init: FitResult | None = None,
    trainable: tuple | None = None,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    devices=None,
) -> FitResult:
    """`fit` on observed cells without a cube (virtual and synthetic series at scale); same options."""
    run, compiled, args = _prepare(data, config, priors, init, trainable, devices)
    return run.until_done(compiled, args, on_progress, should_stop)


def _prepare(data: FitData, config, priors, init, trainable, devices):
    """The start, the packed data on the device(s) and the compiled program: (run, program, args).

    A fresh fit's program depends only on shapes known before the start, so it compiles in a
    thread while the start's regressions run (XLA's compiler and NumPy's solves each hold a core).
    """
    config = config or FitConfig()
    priors = priors or Priors()
    trainable = tuple(trainable or all_sites())
    likelihood = likelihoods.get(config.likelihood)
    started = time.perf_counter()
    mesh = store_mesh(devices)
    batch = None if config.batch_size is None or config.batch_size >= data.n_stores else config.batch_size
    prior = prior_arrays(priors, data.feature_groups)
    if init is not None:
        _check_compatible(init, data, config)
    packed = _pack_on_devices(data, batch, mesh, likelihood)  # the data stay on the device(s) across chunks
    s_pad = packed.store_mask.shape[0] if batch is None else packed.n_rows
    static = {
        "chunk": config.chunk_steps,
        "schedule": config.schedule,
        "optimizer": config.optimizer,
        "particles": config.particles,
        "batch": batch,
        "likelihood": likelihood,
        "mesh": mesh,
    }
    key = jax.random.PRNGKey(config.seed)
    if init is None:
        shapes = _fresh_shapes(data, config, trainable, s_pad)
        ahead = (key, shapes.state, shapes.fixed, packed, prior, _hyper(config, shapes.state))
        threading.Thread(target=program, args=(ahead, static), daemon=True, name="compile-ahead").start()
    params, reset = _starting_guide(data, config, prior, likelihood, init)
    prepared = time.perf_counter()
    params = pad_stores(params, s_pad)
    same_stores = init is not None and np.array_equal(init.store_ids, data.store_ids)
    state = _start_state(params, init, trainable, config, s_pad, reset, same_stores)
    fixed = {k: v for k, v in params.items() if k not in trainable}
    hyper = _hyper(config, state)
    plan = split_plan((key, state, fixed, packed, prior, hyper), batch)
    key, state, fixed, prior = place((key, state, fixed, prior), mesh, (*plan[:3], plan[4]))
    args = (key, state, fixed, packed, prior, hyper)
    compiled, compile_seconds = program(args, static)  # waits for the compile started ahead
    timing = {
        "started": started,
        "compile_seconds": compile_seconds,
        "prepare_seconds": time.perf_counter() - started - compile_seconds,
        "init_seconds": prepared - started,
    }
    run = _Run(data, priors, config, trainable, timing, {"devices": n_devices(mesh), "batch_size": batch})
    return run, compiled, args


class _Shapes(NamedTuple):
    state: FitState
    fixed: dict


def _fresh_shapes(data: FitData, config: FitConfig, trainable: tuple, s_pad: int) -> _Shapes:
    """The shapes and dtypes of a fresh fit's state and fixed entries, before the start computes
    their values: the guide's entries at the padded stores (a whitening basis where the start
    gives one) and the optimizer's state of the trained ones."""
    shapes = guide.entry_shapes(s_pad, data.n_features)
    if not whitens(data.n_stores, config):
        shapes = {k: v for k, v in shapes.items() if not isinstance(v, guide.Whitening)}
    params = {
        name: type(entry)(*(jax.ShapeDtypeStruct(shape, np.float32) for shape in entry))
        for name, entry in shapes.items()
    }
    train = {k: v for k, v in params.items() if k in trainable}
    opt_state = jax.eval_shape(lambda tree: optim.init_state(config.optimizer, tree), train)
    return _Shapes(FitState(train, opt_state, np.int32(0)), {k: v for k, v in params.items() if k not in trainable})


def warm_programs(cube: SalesCube, config: FitConfig | None = None, priors: Priors | None = None) -> list[int]:
    """Compile, without fitting, the programs that fits of a few to a few dozen of the cube's stores
    use (one per coarse cell bucket, packing.cell_bucket), so that a later fit of any such number of
    stores starts stepping at once. Returns the store counts prepared."""
    counts = np.bincount(np.nonzero(cube.observed)[0], minlength=cube.n_stores)
    total = np.cumsum(counts)
    prepared = []
    size = MIN_CELLS
    while size <= COARSE_CELLS:
        n = int(np.searchsorted(total, size, side="right"))  # the most first stores within the bucket
        if n >= 1 and total[n - 1] > size // 2 and n not in prepared:
            _prepare(FitData.from_cube(cube.select_stores(cube.store_ids[:n])), config, priors, None, None, None)
            prepared.append(n)
        size *= 2
    return prepared


def _hyper(config: FitConfig, state: FitState) -> optim.Hyper:
    """The run's numeric settings. A warm start runs a fresh schedule over its own steps while the
    optimizer's step count continues."""
    return optim.Hyper(
        np.float32(config.learning_rate),
        np.float32(config.final_lr_fraction),
        np.float32(config.clip_norm),
        np.int32(int(state.step)),
        np.int32(config.steps),
        np.int32(config.warmup_steps),
        np.int32(config.chunk_steps),
    )


def _starting_guide(data: FitData, config, prior, likelihood, init: FitResult | None) -> tuple[dict, tuple]:
    """(the guide to start from, the sites whose optimizer moments restart). A warm start on the same
    data continues from the previous guide. On other data (new days of the same stores) the start's
    empirical-Bayes approximation of the new posterior is a better starting point than the previous
    fit's guide (measured: 0.2 % lower loss at the first steps, and the previous posterior moved into
    the new basis was worse still), so only the optimizer's step count and the moments of the
    hyper-parameters carry over."""
    if init is None or (init.data_fingerprint != data.fingerprint and config.init == "least_squares"):
        fresh = initial_params(data.cells, data.n_stores, data.n_features, config, prior, likelihood)
        return fresh, () if init is None else guide.local_sites()
    return init.params, ()


def _start_state(
    params: dict,
    init: FitResult | None,
    trainable: tuple,
    config: FitConfig,
    s_pad: int,
    reset: tuple = (),
    same_stores: bool = True,
) -> FitState:
    """The optimizer's state: init's continued (its per-store moments padded to the bucket, or, for
    another set of stores, restarted at zero like the fresh guide's), else a new one."""
    train = {k: v for k, v in params.items() if k in trainable}
    if init is not None and tuple(init.trained) == trainable:
        moments = init.state.opt_state
        if same_stores:
            moments = pad_optimizer_state(moments, s_pad)
        else:
            moments = map_per_store(lambda a: np.zeros((s_pad, *np.shape(a)[1:]), np.asarray(a).dtype), moments)
        opt_state = zero_moments(moments, reset)
        if jax.tree.structure(opt_state) == jax.tree.structure(optim.init_state(config.optimizer, train)):
            return FitState(train, opt_state, np.int32(init.steps))
    step = 0 if init is None else init.steps
    return FitState(train, optim.init_state(config.optimizer, train), np.int32(step))


def _pack_on_devices(data: FitData, batch, mesh, likelihood) -> ModelData:
    """Pack the cells and move them to the device(s). Store minibatches: `pack_by_store` places
    each field as it is built, so the host holds at most one packed field besides the cells (none
    on a CPU where the cells are already in their packed dtypes and aligned), and on a mesh over
    several processes only this process's share of the cells.
    Full batch: `pack` builds every field on the host first, and each is dropped once placed."""

    def put(array, split):
        return place(array, mesh, split)

    if batch is not None:
        shares = {}  # on a mesh over several processes, each packs and places only its own cells

        def share(n_cells):
            shares["cells"] = (n_cells, local_rows(mesh, n_cells))
            return shares["cells"][1]

        def put_share(array, split):
            return place_rows(array, mesh, *shares["cells"]) if split else put(array, False)

        return pack_by_store(
            data.cells,
            data.n_stores,
            data.feature_groups,
            alignment(mesh),
            put=put_share,
            share=share,
        )
    fields = list(pack(data.cells, data.n_stores, data.feature_groups, alignment(mesh), likelihood=likelihood))
    for i, split in enumerate(ModelData(*(True,) * 6, False, False, False)):
        fields[i] = put(fields[i], split)  # drops the host copy of this field
    return ModelData(*fields)


class _Run:
    """Runs the compiled chunks until config.steps, a cancel, or a non-finite loss; builds the result."""

    def __init__(self, data: FitData, priors, config, trainable, timing, extra):
        self.data, self.priors, self.config, self.trainable = data, priors, config, trainable
        self.timing, self.extra = timing, extra

    def until_done(self, compiled, args, on_progress, should_stop) -> FitResult:
        key, state, fixed, packed, prior, hyper = args
        del args
        start_step, losses, done, cancelled = int(hyper.schedule_start), [], 0, False
        run_started = time.perf_counter()
        while done < self.config.steps:
            n = min(self.config.chunk_steps, self.config.steps - done)
            out = compiled(key, state, fixed, packed, prior, hyper._replace(n_steps=np.int32(n)))
            chunk_losses = np.asarray(out.losses)[:n]
            if int(out.diverged_at) >= 0:
                self._diverged(out, fixed, losses, chunk_losses)
            state = out.state
            losses.extend(chunk_losses.tolist())
            done += n
            if on_progress is not None:
                on_progress(start_step + done, float(chunk_losses[-1]))
            if should_stop is not None and done < self.config.steps and should_stop():
                cancelled = True
                break
        seconds = time.perf_counter() - run_started
        return self.result(
            state,
            fixed,
            losses,
            {"cancelled": cancelled, "run_seconds": seconds, "seconds_per_step": seconds / max(len(losses), 1)},
        )

    def _diverged(self, out, fixed, losses, chunk_losses):
        step = int(out.diverged_at)
        losses.extend(chunk_losses[np.isfinite(chunk_losses)].tolist())
        last_good = self.result(out.state, fixed, losses, {"diverged_at": step})
        raise FitDivergedError(
            f"the fit diverged at step {step}: the loss became non-finite. Lower the learning rate "
            f"(now {self.config.learning_rate:g}), use the optimizer clipped_adam, or check the priors; "
            f"the parameters of step {step - 1} were kept.",
            step=step,
            last_good=last_good,
        )

    def result(self, state: FitState, fixed, losses, extra) -> FitResult:
        data, n = self.data, self.data.n_stores
        host = trim_stores(jax.tree.map(to_host, FitState({**fixed, **state.params}, state.opt_state, state.step)), n)
        losses = np.asarray(losses, np.float64)
        positive = positive_cells(data.cells)  # the cells both estimates read
        shock_sd = day_shock_sd(host.params, data.cells, positive=positive)
        days_active = active_days(data.cells, len(data.feature_names), positive=positive)
        meta = {
            "seconds": time.perf_counter() - self.timing["started"],
            **self.timing,
            "steps": int(host.step),
            "steps_this_run": len(losses),
            "final_loss": float(np.mean(losses[-20:])) if len(losses) else float("nan"),
            "n_cells": len(data.cells.y),
            DAY_SHOCK_SD: shock_sd,
            COEFFICIENT_SHOCK_SD: coefficient_shock_sd(shock_sd, days_active).tolist(),
            **data.info,
            **self.extra,
            **extra,
        }
        del meta["started"]
        return FitResult(
            host,
            self.trainable,
            losses,
            np.array(data.store_ids, copy=True),
            tuple(data.feature_names),
            tuple(data.feature_groups),
            self.priors,
            self.config,
            data.fingerprint,
            meta,
        )


def _check_compatible(init: FitResult, data: FitData, config: FitConfig) -> None:
    """A warm start needs init's features; other stores only on other data with a fresh start (the
    new stores' guide comes from the start, the old stores' too, so nothing is carried per store)."""
    if tuple(init.feature_names) != tuple(data.feature_names):
        raise DataError("cannot continue this fit: it was made for other features; start a new fit instead")
    if init.config.likelihood != config.likelihood:  # eta and r mean other things under another law
        raise ConfigError(
            f"cannot continue this fit with the likelihood {config.likelihood!r}: it was made with "
            f"{init.config.likelihood!r}; start a new fit instead",
            key="fit.likelihood",
            value=config.likelihood,
            allowed=repr(init.config.likelihood),
        )
    fresh_start = init.data_fingerprint != data.fingerprint and config.init == "least_squares"
    if not fresh_start and not np.array_equal(init.store_ids, data.store_ids):
        raise DataError("cannot continue this fit: it was made for other stores; start a new fit instead")
