"""Store-minibatch packing: each cell held once, a batch reading exactly its rows' cells, and on a
CPU the device reading the cells' own memory when they are already in their packed form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bhm_core.data.cells import Cells, store_sums
from bhm_core.inference.packing import ALIGNMENT_BYTES, aligned_empty, batch_of, cells_buffer, pack_by_store
from bhm_core.scale.virtual import synthetic_series

GROUPS = ("weekday",) * 3 + ("promo",) * 2


def _cells(counts, seed=0) -> Cells:
    """Cells of stores with these counts, in a shuffled order; each cell's values name it."""
    rng = np.random.default_rng(seed)
    store = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    n = len(store)
    order = rng.permutation(n)
    index = np.stack([rng.integers(0, 3, n), rng.integers(3, 5, n)], axis=1).astype(np.int32)
    value = np.stack([np.ones(n), rng.integers(0, 2, n)], axis=1).astype(np.float32)
    y = np.arange(1, n + 1, dtype=np.float32)  # unique: identifies the cell
    return Cells(store[order], np.zeros(n, np.int32), index[order], value[order], y[order])


def test_a_batch_reads_each_of_its_rows_cells_once_and_masks_the_rest():
    counts = [3, 0, 7, 1, 5]
    cells = _cells(counts)
    packed = pack_by_store(cells, len(counts), GROUPS)
    assert packed.index.dtype == np.uint8 and packed.value.dtype == np.uint8 and packed.y.dtype == np.uint16
    assert packed.y.shape[0] < packed.n_rows * packed.lane.shape[0]  # no row padded to the longest
    rows = jnp.array([2, 0, 2, 1, 4, 3])  # a row twice, an empty one
    data = batch_of(packed, rows)
    width = packed.lane.shape[0]
    mask, y = np.asarray(data.cell_mask).reshape(len(rows), width), np.asarray(data.y).reshape(len(rows), width)
    index = np.asarray(data.cell_index).reshape(len(rows), width, -1)
    for i, row in enumerate(np.asarray(rows)):
        mine = cells.store == row
        assert mask[i].sum() == counts[row] and mask[i, : counts[row]].all()
        # the row's cells, each once, with their own slots (values name the cells)
        assert sorted(y[i][mask[i]]) == sorted(cells.y[mine])
        by_y = {float(v): k for k, v in enumerate(cells.y)}
        for lane in np.flatnonzero(mask[i]):
            assert (index[i, lane] == cells.index[by_y[float(y[i, lane])]]).all()
    assert float(data.scale) == np.float32(len(counts) / len(rows))


def test_cells_in_their_packed_form_are_placed_without_a_copy():
    series = synthetic_series(300, seed=1)
    cells = series.data.cells
    assert cells.index.ctypes.data % ALIGNMENT_BYTES == 0 and cells.value.ctypes.data % ALIGNMENT_BYTES == 0
    packed = pack_by_store(cells, series.data.n_stores, series.data.feature_groups, put=lambda a, _: jax.device_put(a))
    if jax.devices()[0].platform == "cpu":
        assert packed.index.unsafe_buffer_pointer() == cells.index.ctypes.data
        assert packed.value.unsafe_buffer_pointer() == cells.value.ctypes.data
    np.testing.assert_array_equal(np.asarray(packed.index)[: len(cells.y)], cells.index)


def test_cells_elsewhere_are_copied_into_their_packed_form():
    counts = [4, 2]
    cells = _cells(counts)
    index = cells_buffer(len(cells.y), (2,), np.int32)  # a buffer, but not of the packed dtype
    index[...] = cells.index
    packed = pack_by_store(Cells(cells.store, cells.day, index, cells.value, cells.y), 2, GROUPS)
    assert packed.index.dtype == np.uint8 and not np.shares_memory(packed.index, index)


def test_aligned_buffers_and_block_counts():
    for shape in [(0,), (5, 3), (1000, 6)]:
        a = aligned_empty(shape, np.float32)
        assert a.shape == shape and (a.size == 0 or a.ctypes.data % ALIGNMENT_BYTES == 0)  # nothing to share when empty
    store = np.random.default_rng(0).integers(0, 50, 10_000).astype(np.int32)
    weights = np.random.default_rng(1).random(10_000).astype(np.float32)
    np.testing.assert_array_equal(store_sums(store, 60), np.bincount(store, minlength=60))
    np.testing.assert_allclose(store_sums(store, 60, weights), np.bincount(store, weights, minlength=60))
