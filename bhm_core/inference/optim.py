"""Adam as pure functions over a state NamedTuple (the optax habit), with the learning rate and
the schedule's position as traced arguments so that changing them never recompiles.

Hand-written rather than optax: twenty lines, and it keeps the dependency list to what we chose.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class AdamState(NamedTuple):
    step: jnp.ndarray  # () int32, continues across warm starts
    mu: object  # first moments, same tree as the parameters
    nu: object  # second moments


def adam_init(params) -> AdamState:
    zeros = jax.tree.map(jnp.zeros_like, params)
    return AdamState(jnp.zeros((), jnp.int32), zeros, jax.tree.map(jnp.zeros_like, params))


def clip_by_global_norm(grads, max_norm):
    norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads)))
    factor = jnp.minimum(1.0, max_norm / (norm + 1e-12))
    return jax.tree.map(lambda g: g * factor, grads)


def adam_update(params, grads, state: AdamState, lr):
    step = state.step + 1
    mu = jax.tree.map(lambda m, g: BETA1 * m + (1 - BETA1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, state.nu, grads)
    t = step.astype(jnp.float32)
    correction = jnp.sqrt(1 - BETA2**t) / (1 - BETA1**t)
    new_params = jax.tree.map(lambda p, m, v: p - lr * correction * m / (jnp.sqrt(v) + EPS), params, mu, nu)
    return new_params, AdamState(step, mu, nu)


def schedule_factor(kind: str, progress, final_fraction):
    """Multiplier of the base learning rate at progress in [0, 1]; `kind` is static."""
    progress = jnp.clip(progress, 0.0, 1.0)
    if kind == "cosine":
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + jnp.cos(jnp.pi * progress))
    if kind == "exponential":
        return final_fraction**progress
    return jnp.ones_like(progress)
