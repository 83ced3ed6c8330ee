"""The compiled chunk of SVI steps: FitState in, FitState out, inside one lax.while_loop.

Full batch: the data are ModelData over every cell. Store minibatches (batch=B): the data are
StorePacked; each step draws B store rows with replacement and reads, differentiates and updates
only those rows (their guide entries and optimizer moments, gathered once per distinct row), so a
step's work and memory grow with B, not with the number of stores, and stores outside the batch are
untouched.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from bhm_core.inference import optim
from bhm_core.inference.packing import SPLIT_FIELDS, batch_of
from bhm_core.inference.sharding import constrain
from bhm_core.inference.state import FitState, gather_rows, map_per_store, put_rows, take_rows
from bhm_core.model.guide import negative_elbo
from bhm_core.model.hierarchy import ModelData


class ChunkOut(NamedTuple):
    state: FitState
    losses: jnp.ndarray  # (chunk length,), NaN past the steps run
    diverged_at: jnp.ndarray  # () int32 global step of the first non-finite loss, -1 if none


def _unique_rows(rows, fill):
    """Sorted distinct rows padded with `fill` (out of range), and each row's position among them."""
    unique, inverse = jnp.unique(rows, size=rows.shape[0], return_inverse=True, fill_value=fill)
    return unique, inverse.reshape(-1)


def _all_finite(loss, grads):
    return jnp.isfinite(loss) & jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))


def _laid_out(data: ModelData, mesh) -> ModelData:
    """A batch's cell and store arrays split over the mesh like the stores; the slot list whole."""
    split = jax.tree.map(lambda a: constrain(a, mesh) if a.ndim else a, data._replace(dispersion_slots=None))
    return split._replace(dispersion_slots=data.dispersion_slots)


def run_chunk(
    key,
    state: FitState,
    fixed,
    data,
    prior,
    hyper: optim.Hyper,
    *,
    chunk,
    schedule,
    optimizer,
    particles,
    batch,
    likelihood,
    mesh=None,
) -> ChunkOut:
    """Up to `chunk` SVI steps (hyper.n_steps of them); stops early at a non-finite loss, keeping
    the state of the last finite step. fixed: guide entries that are used but not trained. mesh:
    the device mesh the arguments are split over (layout only; see sharding.py)."""

    def loss_fn(trainable, frozen, step_key, step_data, inverse):
        merged = {**jax.lax.stop_gradient(frozen), **trainable}
        if inverse is not None:
            merged = gather_rows(merged, inverse)
        return negative_elbo(step_key, merged, step_data, prior, likelihood, particles)

    value_and_grad = jax.value_and_grad(loss_fn)

    def step(state: FitState):
        batch_key, elbo_key = jax.random.split(jax.random.fold_in(key, state.step))
        if batch is None:
            sub, sub_fixed, step_data, inverse = state, fixed, data, None
        else:
            rows = jax.random.randint(batch_key, (batch,), 0, data.n_stores)
            unique, inverse = _unique_rows(rows, data.n_rows)
            sub, sub_fixed = take_rows(state, unique), take_rows(fixed, unique)
            step_data = _laid_out(batch_of(data, rows, likelihood), mesh)
        loss, grads = value_and_grad(sub.params, sub_fixed, elbo_key, step_data, inverse)
        params, opt_state = optim.apply(optimizer, hyper, schedule, sub.params, grads, sub.opt_state, state.step)
        finite = _all_finite(loss, grads)
        new = jax.tree.map(lambda a, b: jnp.where(finite, a, b), FitState(params, opt_state, state.step + 1), sub)
        if batch is not None:
            new = put_rows(state, unique, new)
        return new, loss, finite

    def body(carry):
        i, state, losses, diverged_at = carry
        new, loss, finite = step(state)
        diverged_at = jnp.where(finite, diverged_at, state.step + 1)
        return i + 1, new, losses.at[i].set(loss), diverged_at

    def cond(carry):
        i, _, _, diverged_at = carry
        return (i < hyper.n_steps) & (diverged_at < 0)

    init = (jnp.int32(0), state, jnp.full((chunk,), jnp.nan, jnp.float32), jnp.int32(-1))
    _, state, losses, diverged_at = jax.lax.while_loop(cond, body, init)
    return ChunkOut(state, losses, diverged_at)


def split_plan(args, batch):
    """Per leaf of run_chunk's arguments: split over the stores axis (True) or replicate."""
    _key, state, fixed, _data, prior, hyper = args

    def per_store(tree):
        return map_per_store(lambda _: batch is not None, jax.tree.map(lambda _: False, tree))

    if batch is None:
        data_plan = ModelData(*(True,) * 6, False, False, False)  # cells split; the rest replicated
    else:
        data_plan = SPLIT_FIELDS
    return (
        False,
        per_store(state),
        per_store(fixed),
        data_plan,
        jax.tree.map(lambda _: False, prior),
        jax.tree.map(lambda _: False, hyper),
    )
