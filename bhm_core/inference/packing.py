"""Observed cells of a cube, packed for the compiled fit.

Full batch: a flat list of observed cells (no work on closed or missing days). Store minibatches:
cells packed per store into rows of a (stores x max cells) block, so a batch is a gather of rows.
Both are padded to bucketed sizes so similar problems share one compiled program, and padding is
masked out of the log density. Store and cell padding are multiples of ``sharding.ALIGN`` so the
same shapes split evenly over 1, 2, 4 or 8 devices.

The likelihood's per-cell constant of the sales (Likelihood.cell_constant) is computed here, once,
for a full batch, and for a store batch's cells in each step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from bhm_core.data.cells import Cells, store_sorted
from bhm_core.inference.sharding import ALIGN
from bhm_core.model.hierarchy import ModelData, dispersion_slots
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL, Likelihood

PACK_BLOCK = 1 << 20  # cells handled at a time when packing, to bound temporary memory


def bucket(n: int, minimum: int = 64) -> int:
    """Round up to at most ~12% above n so that similar sizes share one compiled program."""
    n = max(n, minimum)
    step = 2 ** max(0, n.bit_length() - 4)
    return -(-n // step) * step


COARSE_CELLS = 1 << 16  # up to this many cells a full-batch fit pads to a power of two
MIN_CELLS = 1 << 12
CELLS_PER_PADDED_STORE = 512  # in that range, at least one padded store row per this many cells


def cell_bucket(n: int) -> int:
    """Cells a full-batch fit pads to. Small problems (up to COARSE_CELLS: a few dozen stores of
    three years) pad to a power of two, so fits of 1 to 80 stores share five programs that can be
    compiled ahead; the padding costs little there. Larger ones pad ~12% at most (`bucket`), where
    padding costs real time and a compile is small next to the fit."""
    if n <= COARSE_CELLS:
        return max(MIN_CELLS, 1 << max(n - 1, 0).bit_length())
    return bucket(n)


def store_bucket(n_stores: int, n_cells_padded: int) -> int:
    """Store rows a full-batch fit pads to: with a coarse cell bucket, a power of two of at least
    n_cells_padded / CELLS_PER_PADDED_STORE, so each cell bucket usually goes with one store
    bucket (one program, not one per store count); else ~12% steps."""
    if n_cells_padded <= COARSE_CELLS:
        return max(16, 1 << max(n_stores - 1, 0).bit_length(), n_cells_padded // CELLS_PER_PADDED_STORE)
    return bucket(n_stores, minimum=8)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def slots_of_dispersion(cells: Cells, feature_groups) -> np.ndarray:
    """The cells' `hierarchy.dispersion_slots` (none without cells)."""
    return dispersion_slots(cells.index[0], feature_groups) if len(cells.y) else np.zeros(0, np.int32)


def pack(
    cells: Cells, n_stores: int, feature_groups, align: int = ALIGN, likelihood: Likelihood = NEGATIVE_BINOMIAL
) -> ModelData:
    """Pad cells and stores to bucket sizes; padding is masked out of the log density."""
    n = len(cells.y)
    n_pad = _round_up(cell_bucket(n), align)
    s_pad = _round_up(store_bucket(n_stores, n_pad), align)

    def pad(a, size, fill=0, dtype=None):
        out = np.full((size, *a.shape[1:]), fill, dtype=dtype or a.dtype)
        out[: len(a)] = a
        return out

    return ModelData(
        cell_store=pad(cells.store, n_pad, dtype=np.int32),
        cell_index=pad(cells.index, n_pad, dtype=np.int32),
        cell_value=pad(cells.value, n_pad, dtype=np.float32),
        y=pad(cells.y, n_pad, dtype=np.float32),
        y_constant=pad(np.asarray(likelihood.cell_constant(cells.y)), n_pad),
        cell_mask=pad(np.ones(n, bool), n_pad, False),
        store_mask=pad(np.ones(n_stores, bool), s_pad, False),
        scale=np.float32(1.0),
        dispersion_slots=slots_of_dispersion(cells, feature_groups),
    )


class StorePacked(NamedTuple):
    """Cells per store: row s holds store s's observed cells, left-aligned and masked.

    index, value and y use the narrowest dtype that holds them exactly (int8/int16/int32,
    uint8/float16/float32 and uint16/float32); batch_of widens the gathered rows, so results do not
    depend on it. The likelihood's constant of y is computed for the batch's cells in each step
    (a few thousand cells) rather than stored for every cell (4 bytes a cell at 10^8 cells).
    """

    index: jnp.ndarray  # (S, L, K) integer
    value: jnp.ndarray  # (S, L, K) uint8, float16 or float32
    y: jnp.ndarray  # (S, L) uint16 or float32
    mask: jnp.ndarray  # (S, L) bool
    n_stores: jnp.ndarray  # () int32: real stores (rows past it are padding)
    dispersion_slots: jnp.ndarray  # (D,) int32 (hierarchy.dispersion_slots)


def _index_dtype(index: np.ndarray):
    top = int(index.max(initial=0))
    return np.int8 if top < 2**7 else np.int16 if top < 2**15 else np.int32


def _exact_dtype(values: np.ndarray, candidates=(np.uint8, np.float16)):
    """The first of the candidates (else float32) that represents every value exactly."""
    for dtype in candidates:
        if np.can_cast(values.dtype, dtype, "safe"):  # e.g. uint8 values: no need to look
            return dtype
        # a block at a time bounds the temporary copies
        parts = (values[start : start + PACK_BLOCK] for start in range(0, len(values), PACK_BLOCK))
        if all(np.array_equal(part.astype(dtype).astype(np.float32), part) for part in parts):
            return dtype
    return np.float32


def pack_by_store(
    cells: Cells,
    n_stores: int,
    feature_groups,
    align: int = ALIGN,
    put=None,
    rows=None,
) -> StorePacked:
    """Rows of (stores x max cells), filled a block of cells at a time (bounded temporaries).

    put(array, split): applied to each field as soon as it is filled (e.g. moving it to the
    device(s)), before the next is allocated, so the host never holds every field at once.
    rows(s_pad) -> slice: fill only these rows of the (s_pad, width, ...) fields (a process's share
    of the stores on a mesh over several processes); put then gets (rows, width, ...) blocks.
    """
    put = put or (lambda array, split: array)
    cells = store_sorted(cells)
    counts = np.bincount(cells.store, minlength=n_stores)
    width = bucket(int(counts.max()), minimum=8)
    s_pad = _round_up(bucket(n_stores, minimum=8), align)
    first = np.concatenate([[0], np.cumsum(counts), [len(cells.y)] * (s_pad - n_stores)])  # first cell of each row
    mine = rows(s_pad) if rows is not None else slice(0, s_pad)
    cell_range = range(int(first[mine.start]), int(first[mine.stop]))  # the cells of those rows

    def fill(tail, dtype, source):
        out = np.zeros(((mine.stop - mine.start) * width, *tail), dtype)
        for start in range(cell_range.start, cell_range.stop, PACK_BLOCK):
            part = slice(start, min(start + PACK_BLOCK, cell_range.stop))
            store = cells.store[part]
            out[(store - mine.start) * np.int64(width) + np.arange(part.start, part.stop) - first[store]] = source(part)
        return put(out.reshape(mine.stop - mine.start, width, *tail), True)

    k = cells.index.shape[1]
    return StorePacked(
        fill((k,), _index_dtype(cells.index), lambda part: cells.index[part]),
        fill((k,), _exact_dtype(cells.value), lambda part: cells.value[part]),
        fill((), _exact_dtype(cells.y, (np.uint16,)), lambda part: cells.y[part]),
        fill((), bool, lambda part: True),
        put(np.int32(n_stores), False),
        put(slots_of_dispersion(cells, feature_groups), False),
    )


def batch_of(packed: StorePacked, rows: jnp.ndarray, likelihood: Likelihood = NEGATIVE_BINOMIAL) -> ModelData:
    """ModelData for a batch of store rows, the likelihood scaled by stores / batch size.

    Sampling rows uniformly with replacement keeps the scaled gradient unbiased for the full one.
    Only the batch's rows are read: the work and memory of a step grow with the batch, not with S.
    """
    batch, width = rows.shape[0], packed.y.shape[1]
    n = batch * width
    y = packed.y[rows].reshape(n).astype(jnp.float32)
    return ModelData(
        cell_store=jnp.repeat(jnp.arange(batch, dtype=jnp.int32), width),
        cell_index=packed.index[rows].reshape(n, -1).astype(jnp.int32),
        cell_value=packed.value[rows].reshape(n, -1).astype(jnp.float32),
        y=y,
        y_constant=likelihood.cell_constant(y),
        cell_mask=packed.mask[rows].reshape(n),
        store_mask=jnp.ones(batch, bool),
        scale=packed.n_stores.astype(jnp.float32) / batch,
        dispersion_slots=packed.dispersion_slots,
    )
