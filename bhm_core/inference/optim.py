"""The optimizer: optax's Adam (optionally behind a global-norm clip), with the learning rate and
its schedule applied here as traced numbers.

optax rather than a hand-written Adam: its transforms are pure init/update pairs over a state
pytree, tested upstream, and make another optimizer a one-line change. Its own schedules take a
step count only; ours also needs the step a warm start's schedule begins at and that run's length,
so the rate is computed from traced arguments (`learning_rate`) and multiplies optax's update:
changing the rate, the schedule's length or the clip norm never recompiles, only the optimizer's
kind and the schedule's kind (static) pick another program.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class Hyper(NamedTuple):
    """Numeric settings, traced: changing them never recompiles."""

    lr: jnp.ndarray
    final_fraction: jnp.ndarray
    clip_norm: jnp.ndarray
    schedule_start: jnp.ndarray  # optimizer step at which this run's schedule starts
    schedule_steps: jnp.ndarray  # length of this run's schedule
    warmup_steps: jnp.ndarray  # the rate ramps up linearly over this run's first steps
    n_steps: jnp.ndarray  # steps to run in this chunk (<= chunk length)


def optimizer(kind: str, clip_norm=None) -> optax.GradientTransformation:
    """Adam's direction (unit learning rate); `clipped_adam` clips the gradient's global norm
    first. clip_norm may be traced (it is only read by update)."""
    if kind == "clipped_adam":
        return optax.chain(optax.clip_by_global_norm(clip_norm), optax.scale_by_adam())
    if kind == "adam":
        return optax.scale_by_adam()
    raise ValueError(f"unknown optimizer {kind!r}")  # FitConfig allows only the two above


def init_state(kind: str, params):
    return optimizer(kind, 1.0).init(params)


def schedule_factor(kind: str, progress, final_fraction):
    """Multiplier of the base learning rate at progress in [0, 1]; `kind` is static."""
    progress = jnp.clip(progress, 0.0, 1.0)
    if kind == "cosine":
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + jnp.cos(jnp.pi * progress))
    if kind == "exponential":
        return final_fraction**progress
    return jnp.ones_like(progress)


def learning_rate(schedule: str, hyper: Hyper, step):
    """The rate at optimizer step `step`: warm-up, then the schedule over this run's steps."""
    into_run = (step - hyper.schedule_start).astype(jnp.float32)
    progress = into_run / jnp.maximum(hyper.schedule_steps, 1)
    warmup = jnp.minimum(1.0, (into_run + 1) / jnp.maximum(hyper.warmup_steps, 1))
    return hyper.lr * warmup * schedule_factor(schedule, progress, hyper.final_fraction)


def apply(kind: str, hyper: Hyper, schedule: str, params, grads, opt_state, step):
    """One optimizer step: (new params, new optimizer state)."""
    updates, opt_state = optimizer(kind, hyper.clip_norm).update(grads, opt_state, params)
    rate = learning_rate(schedule, hyper, step)
    return jax.tree.map(lambda p, u: p - rate * u, params, updates), opt_state
