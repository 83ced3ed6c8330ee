"""Observed cells of a cube, packed for the compiled fit.

Full batch: a flat list of observed cells (no work on closed or missing days). Store minibatches:
the cells sorted by store with each store's first cell and count, so a batch gathers its rows'
cells as a (stores x cells per row) block.
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

from bhm_core.data.cells import Cells, store_sorted, store_sums
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
    """The cells flat and sorted by store, with each store row's first cell and number of cells.

    A batch reads `lane`-many consecutive cells from each of its rows' first cell (batch_of), so a
    step's shape is that of the old (stores x max cells) rows while memory holds each cell once:
    no padding to the longest series (42 % of the rows at 10^6 synthetic series). index, value and
    y use the narrowest dtype that holds them exactly (uint8/uint16/int32, uint8/float16/float32
    and uint16/float32); batch_of widens what it reads, so results do not depend on it. The
    likelihood's constant of y is computed for the batch's cells in each step (a few thousand
    cells) rather than stored for every cell (4 bytes a cell at 10^8 cells).
    """

    index: jnp.ndarray  # (N, K) unsigned integer, N the cells padded to the alignment
    value: jnp.ndarray  # (N, K) uint8, float16 or float32
    y: jnp.ndarray  # (N,) uint16 or float32
    first: jnp.ndarray  # (S,) int32: the row's first cell (0 for padding rows)
    count: jnp.ndarray  # (S,) int32: the row's cells (0 for padding rows)
    lane: jnp.ndarray  # (W,) int32 0..W-1, W the cells a batch reads per row (its shape is static)
    n_stores: jnp.ndarray  # () int32: real stores (rows past it are padding)
    dispersion_slots: jnp.ndarray  # (D,) int32 (hierarchy.dispersion_slots)

    @property
    def n_rows(self) -> int:
        return self.count.shape[0]


SPLIT_FIELDS = StorePacked(True, True, True, False, False, False, False, False)  # the cells are split over devices
ALIGNMENT_BYTES = 64  # XLA's CPU client uses a host buffer this aligned in place instead of copying it


def _index_dtype(index: np.ndarray):
    top = int(index.max(initial=0))
    return np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int32


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


def aligned_empty(shape, dtype) -> np.ndarray:
    """np.empty, at an address ALIGNMENT_BYTES aligned: on a CPU, jax.device_put then shares the
    memory instead of copying it (the array must not be written to once placed)."""
    dtype = np.dtype(dtype)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n_bytes + ALIGNMENT_BYTES, np.uint8)
    skip = -raw.ctypes.data % ALIGNMENT_BYTES
    return raw[skip : skip + n_bytes].view(dtype).reshape(shape)


def aligned_copy(values: np.ndarray, dtype) -> np.ndarray:
    """values in `dtype`, in a `cells_buffer` (placed without a copy once packed)."""
    out = cells_buffer(len(values), values.shape[1:], dtype)
    out[...] = values
    return out


CAPACITY_ALIGN = 64  # a multiple of every device count's alignment (sharding.alignment) up to 64


def cells_buffer(n: int, tail: tuple, dtype) -> np.ndarray:
    """An empty (n, *tail) array for cells, aligned and with room after it for the padding
    pack_by_store adds, so that on a CPU the packed field is this memory (`_in_place`)."""
    full = aligned_empty((_round_up(bucket(n, minimum=8), CAPACITY_ALIGN), *tail), dtype)
    return full[:n]


def _in_place(part: np.ndarray, n_rows: int, dtype) -> np.ndarray | None:
    """part extended to n_rows rows over its own buffer, when it is in `dtype`, aligned and its
    buffer has room for them (cells_buffer); else None. The rows past part's are never read."""
    root = part
    while isinstance(root.base, np.ndarray):
        root = root.base
    if part.dtype != dtype or not part.flags.c_contiguous or not root.flags.c_contiguous or part.size == 0:
        return None
    offset = part.ctypes.data - root.ctypes.data
    if part.ctypes.data % ALIGNMENT_BYTES or offset < 0 or offset + n_rows * part.strides[0] > root.nbytes:
        return None
    return np.ndarray((n_rows, *part.shape[1:]), dtype, buffer=root, offset=offset)


def pack_by_store(
    cells: Cells,
    n_stores: int,
    feature_groups,
    align: int = ALIGN,
    put=None,
    share=None,
) -> StorePacked:
    """The cells sorted by store, each field in its narrowest exact dtype, one copy at most.

    put(array, split): applied to each field as soon as it is built (e.g. moving it to the
    device(s)), before the next is, so the host never holds every field twice. A field already in
    its dtype and in a `cells_buffer` goes to put as it is: on a CPU the device then reads the
    cells' own memory.
    share(n) -> slice: build only these cells of the (n, ...) split fields (a process's share on a
    mesh over several processes); put then gets (share, ...) blocks.
    """
    put = put or (lambda array, split: array)
    cells = store_sorted(cells)
    n = len(cells.y)
    counts = store_sums(cells.store, n_stores)
    s_pad = _round_up(bucket(n_stores, minimum=8), align)
    n_pad = _round_up(bucket(n, minimum=8), align)  # ~12 % at most: similar sizes share a program
    first = np.zeros(s_pad, np.int32)
    first[1:n_stores] = np.cumsum(counts[:-1])
    count = np.zeros(s_pad, np.int32)
    count[:n_stores] = counts
    mine = share(n_pad) if share is not None else slice(0, n_pad)

    def flat(source: np.ndarray, dtype):
        real = slice(min(mine.start, n), min(mine.stop, n))
        part = source[real]
        same = _in_place(part, mine.stop - mine.start, dtype)
        if same is not None:
            return put(same, True)
        out = aligned_empty((mine.stop - mine.start, *source.shape[1:]), dtype)
        for start in range(0, len(part), PACK_BLOCK):  # a block at a time: no widened temporary of every cell
            stop = min(start + PACK_BLOCK, len(part))
            out[start:stop] = part[start:stop]
        out[len(part) :] = 0
        return put(out, True)

    return StorePacked(
        flat(cells.index, _index_dtype(cells.index)),
        flat(cells.value, _exact_dtype(cells.value)),
        flat(cells.y, _exact_dtype(cells.y, (np.uint16,))),
        put(first, False),
        put(count, False),
        put(np.arange(bucket(int(counts.max(initial=1)), minimum=8), dtype=np.int32), False),
        put(np.int32(n_stores), False),
        put(slots_of_dispersion(cells, feature_groups), False),
    )


def batch_of(packed: StorePacked, rows: jnp.ndarray, likelihood: Likelihood = NEGATIVE_BINOMIAL) -> ModelData:
    """ModelData for a batch of store rows, the likelihood scaled by stores / batch size.

    Sampling rows uniformly with replacement keeps the scaled gradient unbiased for the full one.
    Only the batch's rows are read: the work and memory of a step grow with the batch, not with S.
    A row's lanes past its cells read cell 0, masked out.
    """
    index, value, y, first, count, lane = (
        jnp.asarray(a) for a in (packed.index, packed.value, packed.y, packed.first, packed.count, packed.lane)
    )
    batch, width = rows.shape[0], lane.shape[0]
    n = batch * width
    mask = lane[None, :] < count[rows][:, None]
    cell = jnp.where(mask, first[rows][:, None] + lane[None, :], 0).reshape(n)
    y = y[cell].astype(jnp.float32)
    return ModelData(
        cell_store=jnp.repeat(jnp.arange(batch, dtype=jnp.int32), width),
        cell_index=index[cell].astype(jnp.int32),
        cell_value=value[cell].astype(jnp.float32),
        y=y,
        y_constant=likelihood.cell_constant(y),
        cell_mask=mask.reshape(n),
        store_mask=jnp.ones(batch, bool),
        scale=packed.n_stores.astype(jnp.float32) / batch,
        dispersion_slots=packed.dispersion_slots,
    )
