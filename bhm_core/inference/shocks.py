"""Chain-wide day shocks: the spread of the day-to-day swings every store shares.

Every store misses the same days together (weather, events): the per-cell observation law treats
these swings as independent noise, which is right for one store-day but makes the sum over stores
far too certain. Forecasts draw one shock per date from N(0, sd^2), shared by all stores
(forecast/sampling.py); the sd is measured here, after each fit, on the fit's own residuals.

The same shocks make the chain's coefficients less certain than the fit says. The model takes each
store-day's noise as independent, so a feature active on few training dates (a Christmas shopping
day seen in one year, an Easter day in two) looks measured by a thousand stores, while every one of
those stores carries the same few days' shocks: the chain's effect of such a feature is off by
their mean, sd / sqrt(days), and so is a forecast of the next such day, by that on top of its own
shock. `coefficient_shock_sd` gives that error per feature; draws of the latents add it to the
chain's coefficients (forecast/sampling.py), so forecasts and effects carry it. It is the leverage
of a one-hot date feature in a regression on the days' mean residuals (1 / days); a feature active
on hundreds of days, such as a weekday or a smooth profile, gets a negligible share.
"""

from __future__ import annotations

import numpy as np

from bhm_core.inference.state import trim_stores
from bhm_core.model.guide import guide_centre
from bhm_core.model.hierarchy import linear_predictor, store_coefficients

MIN_SHOCK_STORES = 5  # stores a day needs to estimate its shock
MIN_SHOCK_DAYS = 28  # such days a fit needs to estimate the shocks' spread
MAX_SHOCK_STORES = 4096  # stores read for the estimate (bounded cost at scale)


def positive_cells(cells, chunk: int = 1 << 20) -> np.ndarray:
    """Indices of the cells with sales among the first MAX_SHOCK_STORES stores, a block at a time:
    no mask of every cell (84 MB each at 84 M cells)."""
    return np.concatenate(
        [
            start
            + np.flatnonzero(
                (cells.y[start : start + chunk] > 0) & (cells.store[start : start + chunk] < MAX_SHOCK_STORES)
            )
            for start in range(0, len(cells.y), chunk)
        ]
    )


def day_shock_sd(params: dict, cells, chunk: int = 1 << 20, positive: np.ndarray | None = None) -> float:
    """The sd (log scale) of the chain-wide day shocks the features leave over.

    Each day's mean log residual over its stores (at the guide's centre) estimates that day's
    shock; their robust spread (1.4826 x MAD, as the shocks are heavy-tailed: holidays the
    features miss), less the part due to the stores' own noise, is the sd. 0 when fewer than
    MIN_SHOCK_DAYS days have MIN_SHOCK_STORES stores. Only the first MAX_SHOCK_STORES stores are
    read: a day's mean over thousands of stores is as good as over a million.
    """
    theta = store_coefficients(guide_centre(trim_stores(params, MAX_SHOCK_STORES)))
    positive = positive_cells(cells, chunk) if positive is None else positive
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


def active_days(cells, n_features: int, chunk: int = 1 << 20, positive: np.ndarray | None = None) -> np.ndarray:
    """(F,) int64 the number of days on which each feature is non-zero in a cell with sales (of
    the first MAX_SHOCK_STORES stores, as for the shocks' sd). positive: `positive_cells`, when the
    caller has them already."""
    positive = positive_cells(cells, chunk) if positive is None else positive
    n_days = int(cells.day[positive].max()) + 1 if positive.size else 0
    active = np.zeros(n_days * n_features, bool)
    for start in range(0, positive.size, chunk):
        at = positive[start : start + chunk]
        keys = cells.day[at, None].astype(np.int64) * n_features + cells.index[at]
        active[keys[cells.value[at] != 0]] = True
    return active.reshape(n_days, n_features).sum(0)


def coefficient_shock_sd(shock_sd: float, days_active: np.ndarray) -> np.ndarray:
    """(F,) the sd of each chain coefficient's error from the day shocks of the days it was
    measured on: shock_sd / sqrt(days), a feature never active taking one day's."""
    return shock_sd / np.sqrt(np.maximum(np.asarray(days_active, np.float64), 1.0))
