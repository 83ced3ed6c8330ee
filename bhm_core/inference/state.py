"""A fit's state as data: FitState (guide parameters, optimizer state, step) and FitResult.

Functions return new states; nothing here holds a random key. Per-store entries (the guide's local
sites and their whitening bases, and the optimizer's moments of local sites) are found by name
anywhere in a tree, so padding, trimming and batch gathers work on any optimizer's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import DictKey

from bhm_core.model import likelihoods
from bhm_core.model.config import FitConfig, Priors
from bhm_core.model.guide import Whitening, identity_whitening, per_store_entries

DAY_SHOCK_SD = "day_shock_sd"  # FitResult.meta key: sd of chain-wide day shocks (inference.shocks)
# FitResult.meta key: per feature, the sd of the chain coefficient's error from those shocks
COEFFICIENT_SHOCK_SD = "coefficient_shock_sd"


class FitState(NamedTuple):
    params: dict  # guide entry -> SiteParams or Whitening
    opt_state: object  # the optimizer's state over the trained entries (optax)
    step: jnp.ndarray  # () int32 optimizer steps taken; continues across warm starts


@dataclass(frozen=True, eq=False)
class FitResult:
    state: FitState  # every guide entry (trained or not), trimmed to the fitted stores; NumPy
    trained: tuple  # the guide sites the optimizer state covers
    losses: np.ndarray  # (steps done,) negative ELBO per step
    store_ids: np.ndarray
    feature_names: tuple
    feature_groups: tuple
    priors: Priors
    config: FitConfig
    data_fingerprint: str
    meta: dict = field(default_factory=dict)  # seconds, compile_seconds, steps, final_loss, ...

    @property
    def params(self) -> dict:
        return self.state.params

    @property
    def steps(self) -> int:
        return int(self.state.step)

    @property
    def likelihood(self) -> likelihoods.Likelihood:
        return likelihoods.get(self.config.likelihood)

    @property
    def day_shock_sd(self) -> float:
        """sd of the chain-wide day shocks forecasts draw (inference.shocks); 0 when not measured."""
        return float(self.meta.get(DAY_SHOCK_SD, 0.0))

    @property
    def coefficient_shock_sd(self) -> np.ndarray:
        """(F,) float32 the sd the day shocks add to each chain coefficient (inference.shocks);
        zeros when not measured."""
        values = self.meta.get(COEFFICIENT_SHOCK_SD)
        if values is None:
            return np.zeros(len(self.feature_names), np.float32)
        return np.asarray(values, np.float32)

    @property
    def final_loss(self) -> float:
        finite = self.losses[np.isfinite(self.losses)]
        return float(np.mean(finite[-20:])) if finite.size else float("nan")


# ----------------------------------------------------------------------------------------------
# Per-store entries, wherever they sit in a tree


def _per_store(path) -> bool:
    names = per_store_entries()
    return any(isinstance(part, DictKey) and part.key in names for part in path)


def map_per_store(fn, tree):
    """fn applied to every array leaf of a per-store entry (first axis: stores); others as they are."""
    return jax.tree_util.tree_map_with_path(lambda path, leaf: fn(leaf) if _per_store(path) else leaf, tree)


def trim_stores(tree, n_stores: int):
    return map_per_store(lambda a: a[:n_stores], tree)


def take_rows(tree, rows):
    """Per-store leaves at the given store rows (out-of-range rows read a clamped row, never used)."""
    return map_per_store(lambda a: a.at[rows].get(mode="clip"), tree)


def put_rows(tree, rows, new):
    """Write a batch's per-store rows back into `tree` (out-of-range rows are dropped); every other
    leaf is taken from `new`."""

    def merge(path, old, updated):
        return old.at[rows].set(updated, mode="drop") if _per_store(path) else updated

    return jax.tree_util.tree_map_with_path(merge, tree, new)


def gather_rows(tree, rows):
    """Per-store leaves at `rows` (a batch may repeat a row): how a batch's cells see their stores."""
    return map_per_store(lambda a: a[rows], tree)


def pad_stores(params: dict, s_pad: int) -> dict:
    """Pad per-store guide entries to the store bucket: padding stores sit at the prior (zero
    location and log-scale), whitened with the identity."""
    out = dict(params)
    for name in per_store_entries():
        if name not in params:
            continue
        entry = params[name]
        extra = s_pad - entry[0].shape[0]
        if isinstance(entry, Whitening):
            padding = identity_whitening(extra, entry.offset.shape[1])
        else:
            padding = [np.zeros((extra, *a.shape[1:]), a.dtype) for a in entry]
        out[name] = type(entry)(*(np.concatenate([a, b]) for a, b in zip(entry, padding)))
    return out


def pad_optimizer_state(opt_state, s_pad: int):
    """The optimizer's per-store moments padded with zeros to the store bucket."""

    def pad(a):
        a = np.asarray(a)
        return np.concatenate([a, np.zeros((s_pad - a.shape[0], *a.shape[1:]), a.dtype)])

    return map_per_store(pad, opt_state)


def zero_moments(opt_state, sites: tuple):
    """The optimizer state with the moments of these sites set to zero (their coordinates changed)."""
    if not sites:
        return opt_state

    def zero(path, leaf):
        hit = any(isinstance(p, DictKey) and p.key in sites for p in path)
        return np.zeros_like(leaf) if hit else leaf

    return jax.tree_util.tree_map_with_path(zero, opt_state)
