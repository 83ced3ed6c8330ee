"""Least squares on log sales over the index-coded design, per store and pooled.

Used to start SVI near the optimum (per-store ridge estimates) and as the log-linear baselines.
The normal equations are accumulated with bincount over slot pairs, so no dense design is built.
"""

from __future__ import annotations

import numpy as np


def normal_equations(cell_store, cell_index, cell_value, target, n_stores: int, n_features: int):
    """Per-store X'X (S, F, F), X'y (S, F) and cell counts (S,) from slot-coded cells."""
    n_slots = cell_index.shape[1]
    block = n_features * n_features
    xtx = np.zeros(n_stores * block)
    xty = np.zeros(n_stores * n_features)
    base_xtx = cell_store.astype(np.int64) * block
    base_xty = cell_store.astype(np.int64) * n_features
    for a in range(n_slots):
        ia, va = cell_index[:, a].astype(np.int64), cell_value[:, a].astype(np.float64)
        xty += np.bincount(base_xty + ia, weights=va * target, minlength=xty.size)
        for b in range(n_slots):
            ib, vb = cell_index[:, b].astype(np.int64), cell_value[:, b]
            xtx += np.bincount(base_xtx + ia * n_features + ib, weights=va * vb, minlength=xtx.size)
    counts = np.bincount(cell_store, minlength=n_stores)
    return xtx.reshape(n_stores, n_features, n_features), xty.reshape(n_stores, n_features), counts


def ridge(xtx, xty, penalty, toward) -> np.ndarray:
    """Solve (X'X + penalty I) theta = X'y + penalty * toward, batched over leading axes.

    The penalty pulls features a store never saw (or saw on too few days) toward `toward`, which
    keeps the solve well-posed when a store has more features than days.
    """
    penalty = np.broadcast_to(np.asarray(penalty, np.float64), xtx.shape[-1:])  # one per feature
    lhs = xtx + np.diag(penalty)
    rhs = xty + penalty * np.asarray(toward)
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


def fit_log_linear(cell_store, cell_index, cell_value, y, n_stores: int, n_features: int,
                   store_penalty: float = 1.0, pooled_penalty: float = 1e-3):
    """Pooled and per-store ridge estimates of log(y) on the features.

    Returns (theta_pooled (F,), theta_store (S, F), residual variance per store (S,)).
    """
    target = np.log(y.astype(np.float64))
    xtx, xty, counts = normal_equations(cell_store, cell_index, cell_value, target, n_stores, n_features)
    pooled = ridge(xtx.sum(0), xty.sum(0), pooled_penalty, np.zeros(n_features))
    per_store = ridge(xtx, xty, store_penalty, pooled)
    eta = (per_store[cell_store[:, None], cell_index] * cell_value).sum(-1)
    resid2 = np.bincount(cell_store, weights=(target - eta) ** 2, minlength=n_stores)
    resid_var = resid2 / np.maximum(counts, 1)
    return pooled, per_store, resid_var
