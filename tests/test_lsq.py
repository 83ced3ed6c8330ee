"""Least squares on log sales: the block-wise dense normal equations against a hand-built design,
and the scale path's ridge estimates against the exact per-store solves."""

from __future__ import annotations

import numpy as np
import pytest

from bhm_core.data.cells import Cells
from bhm_core.model import lsq, start
from bhm_core.model.lsq import POOLED_PENALTY, STORE_PENALTY, normal_equations, ridge


def _design(rng, n_cells, n_stores, overlapping: bool):
    """Slot-coded cells: slot 0 one of columns 0-3, slot 1 column 4 with a real value, slot 2 one
    of columns 5-7 (or 2-7, overlapping slot 0's, when asked), in shuffled store order."""
    store = rng.integers(0, n_stores, n_cells)
    index = np.stack(
        [rng.integers(0, 4, n_cells), np.full(n_cells, 4), rng.integers(2 if overlapping else 5, 8, n_cells)], axis=1
    )
    value = np.stack([np.ones(n_cells), rng.normal(size=n_cells), rng.integers(0, 2, n_cells)], axis=1)
    return store, index, value.astype(np.float32), rng.normal(size=n_cells)


@pytest.mark.parametrize("overlapping", [False, True])
def test_normal_equations_are_those_of_the_dense_design(monkeypatch, overlapping):
    monkeypatch.setattr(lsq, "DENSE_ENTRIES", 400)  # several blocks of stores
    rng = np.random.default_rng(0)
    store, index, value, target = _design(rng, 3000, 37, overlapping)
    dense = np.zeros((len(store), 8))
    for k in range(index.shape[1]):
        np.add.at(dense, (np.arange(len(store)), index[:, k]), value[:, k])
    xtx, xty, counts = normal_equations(store, index, value, target, 37, 8)
    for s in range(37):
        rows = store == s
        np.testing.assert_allclose(xtx[s], dense[rows].T @ dense[rows], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(xty[s], dense[rows].T @ target[rows], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(counts, np.bincount(store, minlength=37))


def test_the_scale_start_solves_each_store_toward_the_pooled_fit(monkeypatch):
    monkeypatch.setattr(start, "STORE_BLOCK", 16)  # the pooled fit from a sample of the stores
    monkeypatch.setattr(lsq, "DENSE_ENTRIES", 2000)
    rng = np.random.default_rng(1)
    n_stores, n_features = 200, 8
    store, index, value, _ = _design(rng, 20_000, n_stores, False)
    order = np.argsort(store, kind="stable")
    truth = rng.normal(2.5, 0.3, (n_stores, n_features))
    eta = (truth[store[:, None], index] * value).sum(-1)
    y = np.exp(eta + rng.normal(0.0, 0.1, len(store))).astype(np.float32)
    cells = Cells(store[order].astype(np.int32), np.zeros(len(y), np.int16), index[order], value[order], y[order])
    theta, resid_var = start.per_store_log_linear(cells, n_stores, n_features)
    target = np.log(cells.y.astype(np.float64))
    xtx, xty, counts = normal_equations(cells.store, cells.index, cells.value, target, n_stores, n_features)
    sample = np.arange(0, n_stores, n_stores // 16)
    pooled = ridge(xtx[sample].sum(0), xty[sample].sum(0), POOLED_PENALTY, np.zeros(n_features))
    np.testing.assert_allclose(theta, ridge(xtx, xty, STORE_PENALTY, pooled), rtol=1e-4, atol=1e-4)
    eta_fit = (theta[cells.store[:, None], cells.index] * cells.value).sum(-1)
    expected = np.bincount(cells.store, (target - eta_fit) ** 2, n_stores) / counts
    np.testing.assert_allclose(resid_var, expected, rtol=1e-3, atol=1e-6)
    assert 0.005 < np.median(resid_var) < 0.012  # the noise's variance, 0.01, less what the fit absorbs
