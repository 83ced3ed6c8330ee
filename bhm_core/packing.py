"""Observed cells of a cube, packed for the compiled fit.

Full batch: a flat list of observed cells (no work on closed or missing days). Store minibatches:
cells packed per store into rows of a (stores x max cells) block, so a batch is a gather of rows.
Both are padded to bucketed sizes so similar problems share one compiled program, and padding is
masked out of the log density.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from .cube import SalesCube
from .errors import DataError
from .model import ModelData


def bucket(n: int, minimum: int = 64) -> int:
    """Round up to at most ~12% above n so that similar sizes share one compiled program."""
    n = max(n, minimum)
    step = 2 ** max(0, n.bit_length() - 4)
    return -(-n // step) * step


@dataclass(frozen=True, eq=False)
class Cells:
    """Observed cells of a cube as flat arrays, before padding."""

    store: np.ndarray   # (n,) int32
    day: np.ndarray     # (n,) int32
    index: np.ndarray   # (n, K) int32
    value: np.ndarray   # (n, K) float32
    y: np.ndarray       # (n,) float32


def observed_cells(cube: SalesCube) -> Cells:
    store, day = np.nonzero(cube.observed)
    if store.size == 0:
        raise DataError("no observed store-days to fit: every day is closed or missing")
    return Cells(store.astype(np.int32), day.astype(np.int32),
                 cube.design.index[store, day].astype(np.int32), cube.design.value[store, day],
                 cube.sales[store, day].astype(np.float32))


def pack(cells: Cells, n_stores: int) -> ModelData:
    """Pad cells and stores to bucket sizes; padding is masked out of the log density."""
    n, k = cells.index.shape
    n_pad, s_pad = bucket(n), bucket(n_stores, minimum=8)

    def pad(a, size, fill=0):
        out = np.full((size, *a.shape[1:]), fill, dtype=a.dtype)
        out[:len(a)] = a
        return out

    return ModelData(
        cell_store=pad(cells.store, n_pad), cell_index=pad(cells.index, n_pad),
        cell_value=pad(cells.value, n_pad), y=pad(cells.y, n_pad),
        lgamma_y1=pad(_lgamma_y1(cells.y).astype(np.float32), n_pad),
        cell_mask=pad(np.ones(n, bool), n_pad, False), store_mask=pad(np.ones(n_stores, bool), s_pad, False),
        scale=np.float32(1.0))


def _lgamma_y1(y: np.ndarray) -> np.ndarray:
    return np.asarray(gammaln(y.astype(np.float32) + 1.0), np.float32)


class StorePacked(NamedTuple):
    """Cells per store: row s holds store s's observed cells, left-aligned and masked."""

    index: jnp.ndarray      # (S, L, K) int32
    value: jnp.ndarray      # (S, L, K) float32
    y: jnp.ndarray          # (S, L) float32
    lgamma_y1: jnp.ndarray  # (S, L) float32
    mask: jnp.ndarray       # (S, L) bool
    n_stores: jnp.ndarray   # () int32: real stores (rows past it are padding)


def pack_by_store(cells: Cells, n_stores: int) -> StorePacked:
    counts = np.bincount(cells.store, minlength=n_stores)
    width, s_pad = bucket(int(counts.max()), minimum=8), bucket(n_stores, minimum=8)
    order = np.argsort(cells.store, kind="stable")
    store = cells.store[order]
    slot = np.arange(len(store)) - np.repeat(np.cumsum(counts) - counts, counts)
    k = cells.index.shape[1]
    index = np.zeros((s_pad, width, k), np.int32)
    value = np.zeros((s_pad, width, k), np.float32)
    y = np.zeros((s_pad, width), np.float32)
    mask = np.zeros((s_pad, width), bool)
    index[store, slot], value[store, slot] = cells.index[order], cells.value[order]
    y[store, slot], mask[store, slot] = cells.y[order], True
    return StorePacked(index, value, y, _lgamma_y1(y), mask, np.int32(n_stores))


def batch_of(packed: StorePacked, rows: jnp.ndarray) -> ModelData:
    """ModelData for a batch of store rows, the likelihood scaled by stores / batch size.

    Sampling rows uniformly with replacement keeps the scaled gradient unbiased for the full one.
    """
    batch, width = rows.shape[0], packed.y.shape[1]
    n = batch * width
    return ModelData(
        cell_store=jnp.repeat(jnp.arange(batch, dtype=jnp.int32), width),
        cell_index=packed.index[rows].reshape(n, -1), cell_value=packed.value[rows].reshape(n, -1),
        y=packed.y[rows].reshape(n), lgamma_y1=packed.lgamma_y1[rows].reshape(n),
        cell_mask=packed.mask[rows].reshape(n), store_mask=jnp.ones(batch, bool),
        scale=packed.n_stores.astype(jnp.float32) / batch)
