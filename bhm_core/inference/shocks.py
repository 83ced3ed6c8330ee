"""Chain-wide day shocks: the spread of the day-to-day swings every store shares.

Every store misses the same days together (weather, events): the per-cell observation law treats
these swings as independent noise, which is right for one store-day but makes the sum over stores
far too certain. Forecasts draw one shock per date from N(0, sd^2), shared by all stores
(forecast/sampling.py); the sd is measured here, after each fit, on the fit's own residuals.
"""

from __future__ import annotations

import numpy as np

from bhm_core.inference.state import trim_stores
from bhm_core.model.guide import guide_centre
from bhm_core.model.hierarchy import linear_predictor, store_coefficients

MIN_SHOCK_STORES = 5  # stores a day needs to estimate its shock
MIN_SHOCK_DAYS = 28  # such days a fit needs to estimate the shocks' spread
MAX_SHOCK_STORES = 4096  # stores read for the estimate (bounded cost at scale)


def day_shock_sd(params: dict, cells, chunk: int = 1 << 20) -> float:
    """The sd (log scale) of the chain-wide day shocks the features leave over.

    Each day's mean log residual over its stores (at the guide's centre) estimates that day's
    shock; their robust spread (1.4826 x MAD, as the shocks are heavy-tailed: holidays the
    features miss), less the part due to the stores' own noise, is the sd. 0 when fewer than
    MIN_SHOCK_DAYS days have MIN_SHOCK_STORES stores. Only the first MAX_SHOCK_STORES stores are
    read: a day's mean over thousands of stores is as good as over a million.
    """
    theta = store_coefficients(guide_centre(trim_stores(params, MAX_SHOCK_STORES)))
    positive = np.concatenate(  # a block at a time: no mask of every cell (84 MB each at 84 M cells)
        [
            start
            + np.flatnonzero(
                (cells.y[start : start + chunk] > 0) & (cells.store[start : start + chunk] < MAX_SHOCK_STORES)
            )
            for start in range(0, len(cells.y), chunk)
        ]
    )
    residual = np.empty(positive.size)
    for start in range(0, positive.size, chunk):
        at = positive[start : start + chunk]
        eta = linear_predictor(theta, cells.store[at], cells.index[at], cells.value[at])
        residual[start : start + chunk] = np.log(cells.y[at]) - eta
    day = cells.day[positive]
    count = np.bincount(day)
    enough = count >= MIN_SHOCK_STORES
    if enough.sum() < MIN_SHOCK_DAYS:
        return 0.0
    n = count[enough]
    mean = np.bincount(day, residual)[enough] / n
    within = np.bincount(day, residual**2)[enough] / n - mean**2
    spread = 1.4826 * np.median(np.abs(mean - np.median(mean)))
    return float(np.sqrt(max(spread**2 - np.median(within / np.maximum(n - 1, 1)), 0.0)))
