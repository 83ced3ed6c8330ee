"""Least squares on log sales over the index-coded design, per store and pooled.

Used to start SVI near the optimum (per-store ridge estimates) and as the log-linear baselines.
The normal equations are accumulated with bincount over slot pairs, so no dense design is built.
"""

from __future__ import annotations

import numpy as np

from bhm_core.model.hierarchy import linear_predictor

POOLED_PENALTY = 1e-3  # only keeps the pooled solve defined; the data dominate
STORE_PENALTY = 1.0  # as one extra day at the pooled estimate, for an indicator feature


def normal_equations(cell_store, cell_index, cell_value, target, n_stores: int, n_features: int):
    """Per-store X'X (S, F, F), X'y (S, F) and cell counts (S,) from slot-coded cells.

    Each slot spans a narrow band of feature columns (its group's), so slot pair (a, b) fills an
    (S, band_a, band_b) block with one bincount of that size instead of one over all S x F x F
    entries; pairs b < a are transposes. Rossmann (844k cells, 115 features): 1.2-1.5 s instead of
    5.6 s with every band starting at column 0.
    """
    n_slots = cell_index.shape[1]
    xtx = np.zeros((n_stores, n_features, n_features))
    xty = np.zeros((n_stores, n_features))
    store = cell_store.astype(np.int64)
    lows = [int(cell_index[:, a].min()) if len(cell_index) else 0 for a in range(n_slots)]
    widths = [int(cell_index[:, a].max(initial=0)) - lows[a] + 1 for a in range(n_slots)]
    local = [cell_index[:, a].astype(np.int64) - lows[a] for a in range(n_slots)]  # column within the band
    keys = [store * widths[a] + local[a] for a in range(n_slots)]
    values = [cell_value[:, a].astype(np.float64) for a in range(n_slots)]
    for a in range(n_slots):
        band_a = slice(lows[a], lows[a] + widths[a])
        xty[:, band_a] += np.bincount(keys[a], weights=values[a] * target, minlength=n_stores * widths[a]).reshape(
            n_stores, widths[a]
        )
        for b in range(a, n_slots):
            band_b = slice(lows[b], lows[b] + widths[b])
            block = np.bincount(
                keys[a] * widths[b] + local[b],
                weights=values[a] * values[b],
                minlength=n_stores * widths[a] * widths[b],
            ).reshape(n_stores, widths[a], widths[b])
            xtx[:, band_a, band_b] += block
            if b != a:
                xtx[:, band_b, band_a] += block.transpose(0, 2, 1)
    counts = np.bincount(cell_store, minlength=n_stores)
    return xtx, xty, counts


def ridge(xtx, xty, penalty, toward) -> np.ndarray:
    """Solve (X'X + penalty I) theta = X'y + penalty * toward, batched over leading axes.

    The penalty pulls features a store never saw (or saw on too few days) toward `toward`, which
    keeps the solve well-posed when a store has more features than days.
    """
    penalty = np.broadcast_to(np.asarray(penalty, np.float64), xtx.shape[-1:])  # one per feature
    lhs = xtx + np.diag(penalty)
    rhs = xty + penalty * np.asarray(toward)
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


def fit_log_linear(
    cell_store,
    cell_index,
    cell_value,
    y,
    n_stores: int,
    n_features: int,
    store_penalty: float = STORE_PENALTY,
    pooled_penalty: float = POOLED_PENALTY,
    equations=None,
):
    """Pooled and per-store ridge estimates of log(y) on the features.

    equations: this data's (X'X, X'y, counts) from `normal_equations`, when already computed.
    Returns (theta_pooled (F,), theta_store (S, F), residual variance per store (S,)).
    """
    target = np.log(y.astype(np.float64))
    xtx, xty, counts = equations or normal_equations(cell_store, cell_index, cell_value, target, n_stores, n_features)
    pooled = ridge(xtx.sum(0), xty.sum(0), pooled_penalty, np.zeros(n_features))
    per_store = ridge(xtx, xty, store_penalty, pooled)
    eta = linear_predictor(per_store, cell_store, cell_index, cell_value)
    resid2 = np.bincount(cell_store, weights=(target - eta) ** 2, minlength=n_stores)
    resid_var = resid2 / np.maximum(counts, 1)
    return pooled, per_store, resid_var
