"""Where a fit starts: guide locations from per-store ridge regressions on log sales.

Up to STORE_BLOCK stores this is `lsq.fit_log_linear` as it is. Past that (virtual and synthetic
series, 10^5..10^6 stores) the same estimates are computed a block of stores at a time, so memory
stays at one block's (stores x F x F) normal equations, and each block's equations come from one
bincount over all slot pairs instead of one per pair (K^2 passes over a block-sized output).
"""

from __future__ import annotations

import math

import numpy as np

from .config import FitConfig
from .lsq import fit_log_linear, ridge
from .model import SiteParams, to_unconstrained
from .packing import Cells, _store_sorted

INITIAL_LOG_SCALE = math.log(0.05)
STORE_BLOCK = 1 << 14      # above this many stores, work a block of stores at a time
BLOCK_ENTRIES = 1 << 23    # stores x F x F of one block's normal equations (64 MB)
PAIR_ENTRIES = 1 << 22     # cells x K x K handled by one bincount
POOLED_PENALTY, STORE_PENALTY = 1e-3, 1.0  # lsq.fit_log_linear's defaults


def initial_params(cells: Cells, n_stores: int, n_features: int, config: FitConfig, priors_arr) -> dict:
    """Guide locations from per-store ridge regression on log sales (or the prior means)."""
    if config.init == "least_squares":
        theta, resid_var = per_store_log_linear(cells, n_stores, n_features)
        theta_mu = theta.mean(0)
        theta_sigma = np.maximum(theta.std(0), 0.05)
        z = (theta - theta_mu) / theta_sigma
        # Var[y] = mu (1 + e^r); on the log scale Var[log y] ~ (1 + e^r) / mu
        mean_y = np.bincount(cells.store, weights=cells.y, minlength=n_stores) / np.maximum(
            np.bincount(cells.store, minlength=n_stores), 1)
        r_store = np.log(np.clip(resid_var * np.maximum(mean_y, 1.0) - 1.0, 1.0, 1e6))
        r_mu = float(np.median(r_store))
        r_sigma = max(float(r_store.std()) / float(priors_arr.w_scale), 0.1)
        w = np.clip((r_store - r_mu) / r_sigma, -3 * float(priors_arr.w_scale), 3 * float(priors_arr.w_scale))
    else:
        theta_mu = np.asarray(priors_arr.mu_loc, np.float64)
        theta_sigma = np.full(n_features, 0.5)
        z = np.zeros((n_stores, n_features))
        r_mu, r_sigma, w = float(priors_arr.r_mu_loc), 0.5, np.zeros(n_stores)
    values = {"theta_mu": theta_mu, "theta_sigma": theta_sigma, "r_mu": np.asarray(r_mu),
              "r_sigma": np.asarray(r_sigma), "z": z, "w": w}
    return {name: SiteParams(np.asarray(to_unconstrained(name, np.asarray(v)), np.float32),
                             np.full(np.shape(v), INITIAL_LOG_SCALE, np.float32))
            for name, v in values.items()}


def per_store_log_linear(cells: Cells, n_stores: int, n_features: int):
    """Per-store ridge estimates (S, F) of log sales and residual variances (S,), pulled toward the
    pooled estimate: fit_log_linear's, block by block past STORE_BLOCK stores (two passes: the
    pooled equations, then the stores)."""
    if n_stores <= STORE_BLOCK:
        _, theta, resid_var = fit_log_linear(cells.store, cells.index, cells.value, cells.y,
                                             n_stores, n_features)
        return theta, resid_var
    cells = _store_sorted(cells)
    f = n_features
    block = max(1, min(STORE_BLOCK, BLOCK_ENTRIES // (f * f)))
    xtx_all, xty_all = np.zeros((f, f)), np.zeros(f)
    for first in range(0, n_stores, block):  # pass 1: pooled equations
        xtx, xty, _ = _block_equations(cells, first, min(block, n_stores - first), f)
        xtx_all += xtx.sum(0)
        xty_all += xty.sum(0)
    pooled = ridge(xtx_all, xty_all, POOLED_PENALTY, np.zeros(f))
    theta, resid_var = np.zeros((n_stores, f)), np.zeros(n_stores)
    for first in range(0, n_stores, block):  # pass 2: the stores, shrunk toward the pooled fit
        count = min(block, n_stores - first)
        xtx, xty, counts = _block_equations(cells, first, count, f)
        estimate = ridge(xtx, xty, STORE_PENALTY, pooled)
        part = slice(*np.searchsorted(cells.store, [first, first + count]))
        store = cells.store[part] - first
        eta = (estimate[store[:, None], cells.index[part]] * cells.value[part]).sum(-1)
        resid2 = np.bincount(store, weights=(np.log(cells.y[part].astype(np.float64)) - eta) ** 2,
                             minlength=count)
        theta[first:first + count], resid_var[first:first + count] = estimate, resid2 / np.maximum(counts, 1)
    return theta, resid_var


def _block_equations(cells: Cells, first: int, count: int, f: int):
    """X'X (count, F, F), X'y (count, F) and cell counts of stores [first, first + count)."""
    lo, hi = np.searchsorted(cells.store, [first, first + count])
    k = cells.index.shape[1]
    xtx, xty = np.zeros(count * f * f), np.zeros(count * f)
    step = max(1, PAIR_ENTRIES // (k * k))
    for start in range(lo, hi, step):
        part = slice(start, min(start + step, hi))
        store = (cells.store[part] - first).astype(np.int64)
        index, value = cells.index[part].astype(np.int64), cells.value[part].astype(np.float64)
        target = np.log(cells.y[part].astype(np.float64))
        row = store[:, None] * f + index                                          # (n, K)
        pair = row[:, :, None] * f + index[:, None, :]                            # (n, K, K)
        xtx += np.bincount(pair.ravel(), (value[:, :, None] * value[:, None, :]).ravel(), minlength=xtx.size)
        xty += np.bincount(row.ravel(), (value * target[:, None]).ravel(), minlength=xty.size)
    counts = np.bincount(cells.store[lo:hi] - first, minlength=count)
    return xtx.reshape(count, f, f), xty.reshape(count, f), counts
