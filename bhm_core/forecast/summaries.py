"""Summaries of predictive draws: the points (mean, median, the RMSPE-optimal point) and intervals."""

from __future__ import annotations

import numpy as np

LEVELS = (50, 80, 90, 95)


def rmspe_optimal_point(samples: np.ndarray, axis: int = 0) -> np.ndarray:
    """The point f minimising expected squared relative error E[((y - f) / y)^2 | y > 0]:
    f = E[1/y] / E[1/y^2] over the positive samples (0 where none is positive).

    Relative errors punish over-forecasts of small sales hardest, so this sits below the median;
    it is the Bayes decision for RMSPE, as the mean is for RMSE and the median for MAE.
    """
    positive = samples > 0
    inverse = np.where(positive, 1.0 / np.where(positive, samples, 1.0), 0.0)
    first, second = inverse.sum(axis), (inverse**2).sum(axis)
    return np.where(second > 0, first / np.where(second > 0, second, 1.0), 0.0)


def _quantiles_of_sorted(ordered: np.ndarray, qs) -> list:
    """np.percentile's default (linear) interpolation, on samples already sorted along axis 1."""
    m = ordered.shape[1]
    out = []
    for q in qs:
        position = q / 100 * (m - 1)
        below = int(np.floor(position))
        above = min(below + 1, m - 1)
        weight = position - below
        out.append(ordered[:, below] * (1 - weight) + ordered[:, above] * weight)
    return out


def summarise_cells(samples_by_cell: np.ndarray, levels=LEVELS) -> dict:
    """Per-cell point and interval summaries of (cells, n_samples) draws, and the sorted draws.

    One sort serves every quantile and the CRPS (`metrics.crps_from_samples(..., presorted=True)`).
    """
    ordered = np.sort(samples_by_cell, axis=1)
    qs = sorted({50.0} | {50 - l / 2 for l in levels} | {50 + l / 2 for l in levels})
    at = dict(zip(qs, _quantiles_of_sorted(ordered, qs)))
    out = {"point": ordered.mean(1), "median": at[50.0], "point_rmspe": rmspe_optimal_point(ordered, axis=1)}
    for level in levels:
        out[f"lo_{level}"], out[f"hi_{level}"] = at[50 - level / 2], at[50 + level / 2]
    return out, ordered


def summarise(samples: np.ndarray, levels=LEVELS) -> dict:
    """Point and interval summaries over the leading sample axis, in the samples' other shape."""
    shape = samples.shape[1:]
    stats, _ = summarise_cells(samples.reshape(samples.shape[0], -1).T, levels)
    return {k: v.reshape(shape) for k, v in stats.items()}
