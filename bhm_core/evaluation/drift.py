"""Has the chain changed under the model? Three checks on the most recent days of the data.

- Stores that left the model: each store's recent observed days against the fit's predictive
  distribution, after the chain-wide shifts the second check finds (so a changed promo effect is
  the effect's flag, not every store's). Under a calibrated model a day falls outside the 90 % interval with probability
  0.1 and the mean log error of n days is about N(0, s^2 / n), s the predictive spread of log
  sales; a store is flagged when both its count of days outside and its mean log error are beyond
  what that makes likely (each at level ALPHA), not by a fixed threshold.
- Effects that moved: the fit's residuals on the recent days (log sales less the fit's linear
  predictor at the posterior centre), regressed on each chain-wide effect's features (promo, the
  weekdays, the holiday levels): the shift's estimate and standard error give the posterior
  probability (flat prior) that the effect moved by more than SHIFT_SIZE on the log scale.
- Inputs that changed: promo frequency and closures against the year before, stores new to the
  fit or absent from the recent days, store variants and holiday levels the fit never saw.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import bdtrc, ndtr  # scipy.stats' binom.sf and norm.sf, without its 0.4 s import

from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS
from bhm_core.data.cube import CLOSED, MISSING, SalesCube
from bhm_core.errors import DataError
from bhm_core.forecast.predict import chunk_draws
from bhm_core.forecast.sampling import Scenario
from bhm_core.inference.state import FitResult
from bhm_core.model.guide import guide_centre
from bhm_core.model.hierarchy import linear_predictor, store_coefficients

DEFAULT_RECENT = 56
ALPHA = 0.01
SHIFT_SIZE = math.log(1.1)  # an effect that moved by more than 10 %
FLAG_PROBABILITY = 0.95
EFFECT_GROUPS = {"promo": "promo", "state_holiday": "holiday", "school_holiday": "school holiday"}


def drift(
    result: FitResult, cube: SalesCube, recent: int = DEFAULT_RECENT, *, n_samples: int = 300, seed: int = 0
) -> dict:
    """The three checks over the last `recent` days of the cube (the fit's stores that it has)."""
    if isinstance(recent, bool) or not isinstance(recent, (int, np.integer)) or not 7 <= recent <= cube.n_days:
        raise DataError(f"recent days must be a whole number in 7..{cube.n_days} (the data's days), got {recent!r}")
    stores = np.intersect1d(result.store_ids, cube.store_ids)
    if stores.size == 0:
        raise DataError("none of the fit's stores is in these data")
    sub = cube.select_stores(stores)
    if tuple(sub.feature_names) != tuple(result.feature_names):
        raise DataError(
            "these data encode other features than the fit (a new store variant?); drift needs the "
            "fit's features: fit again on these data"
        )
    fitted_to = np.datetime64(result.meta.get("last_date", str(cube.dates[-1])), "D")
    if fitted_to < cube.dates[-1] and sub.spec.origin_groups():
        sub = sub.with_origin(fitted_to)  # the covariates as the fit computed them
    first = cube.dates[-1] - np.timedelta64(int(recent) - 1, "D")
    window = sub.select_days(first, None)
    effects, common = effects_flagged(result, window)
    return {
        "recent_days": int(recent),
        "first_day": str(first),
        "last_day": str(cube.dates[-1]),
        "overlaps_fit": bool(first <= fitted_to),
        "stores_flagged": stores_flagged(result, sub, window, common, n_samples, seed),
        "effects_flagged": effects,
        "inputs": inputs_changed(result, cube, first),
    }


def store_drift(
    result: FitResult, cube: SalesCube, window: SalesCube, common: np.ndarray, n_samples: int, seed: int
) -> list[dict]:
    """Per store: observed recent days, share outside the 90 % interval, mean log error and the
    probabilities of both under the predictive distribution; `common` (stores, days) the chain-wide
    log shift taken out of the sales first."""
    out, row = [], 0
    for draws in chunk_draws(result, cube, window.store_ids, window.dates, n_samples, seed, Scenario(), 64):
        log_draws = np.log(np.maximum(draws.samples, 0.5))  # (n, stores, days); a draw of 0 as half a sale
        lo, hi = np.quantile(draws.samples, [0.05, 0.95], axis=0)
        centre, spread = np.median(log_draws, 0), log_draws.std(0)
        for i, store in enumerate(draws.ids):
            seen = ~np.isnan(draws.actual[i]) & (draws.status[i] != CLOSED)
            n = int(seen.sum())
            if n:
                y = draws.actual[i, seen] * np.exp(-common[row + i, seen])
                outside = int(((y < lo[i, seen]) | (y > hi[i, seen])).sum())
                error = float(np.mean(np.log(y) - centre[i, seen]))
                z = error / max(float(np.sqrt(np.mean(spread[i, seen] ** 2) / n)), 1e-9)
                out.append(
                    {
                        "store": int(store),
                        "days": n,
                        "share_outside_90": outside / n,
                        "mean_log_error": error,
                        "p_outside": float(bdtrc(outside - 1, n, 0.1)),
                        "p_error": float(2 * ndtr(-abs(z))),
                    }
                )
        row += len(draws.ids)
    return out


def stores_flagged(result, cube, window, common, n_samples, seed) -> list[dict]:
    rows = store_drift(result, cube, window, common, n_samples, seed)
    flagged = [r for r in rows if r["p_outside"] < ALPHA and r["p_error"] < ALPHA]
    keep = ("store", "share_outside_90", "mean_log_error", "days")
    return sorted(({k: r[k] for k in keep} for r in flagged), key=lambda r: -abs(r["mean_log_error"]))


def effects_flagged(result: FitResult, window: SalesCube) -> tuple[list[dict], np.ndarray]:
    """Chain-wide effects whose recent shift (log scale) is larger than SHIFT_SIZE with posterior
    probability above FLAG_PROBABILITY, and the (stores, days) log shift the flagged ones add."""
    common = np.zeros((window.n_stores, window.n_days))
    store, day = np.nonzero(window.observed)
    if store.size == 0:
        return [], common
    rows = np.searchsorted(result.store_ids, window.store_ids)[store]
    theta = store_coefficients(guide_centre(result.params))
    index, value = window.design.index[store, day].astype(np.int64), window.design.value[store, day]
    residual = np.log(window.sales[store, day].astype(np.float64)) - linear_predictor(theta, rows, index, value)
    residual -= residual.mean()  # a level shift of every store is the stores' own check, not an effect's
    names, groups = np.asarray(result.feature_names), np.asarray(result.feature_groups)
    columns = _effect_columns(names, groups, index, value)
    if not columns:
        return [], common
    active = np.stack([((index == c) * value).sum(1) for c in columns], 1)
    shifts, errors = _joint_shifts(residual, active)
    out = []
    for j, column in enumerate(columns):
        probability = float(ndtr(-(SHIFT_SIZE - abs(shifts[j])) / errors[j]))
        if probability > FLAG_PROBABILITY:
            out.append(
                {
                    "effect": str(names[column]),
                    "shift": float(shifts[j]),
                    "probability": probability,
                    "cells": int((active[:, j] != 0).sum()),
                }
            )
            common[store, day] += shifts[j] * active[:, j]
    return sorted(out, key=lambda e: -e["probability"]), common


def _effect_columns(names, groups, index, value) -> list[int]:
    """The feature columns of the chain-wide effects checked, less one reference level per
    one-hot group (the weekdays', the no-holiday level) and those too rare to tell."""
    out = []
    for group in ("weekday", *EFFECT_GROUPS):
        columns = [int(c) for c in np.flatnonzero(groups == group)]
        counts = [int(((index == c) & (value != 0)).any(1).sum()) for c in columns]
        if group in ("weekday", "state_holiday") and columns:
            columns, counts = columns[1:], counts[1:]
        out += [c for c, n in zip(columns, counts) if n >= 30]
    return out


def _joint_shifts(residual: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares shifts of every effect at once (with an intercept), and their standard errors:
    one regression, so that an effect seen mostly on some weekdays is not read as those weekdays'."""
    x = np.column_stack([np.ones(len(residual)), active])
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ (x.T @ residual)
    rest = residual - x @ beta
    sigma2 = rest @ rest / max(len(residual) - x.shape[1], 1)
    return beta[1:], np.sqrt(np.maximum(np.diag(xtx_inv)[1:] * sigma2, 1e-18))


def inputs_changed(result: FitResult, cube: SalesCube, first: np.datetime64) -> dict:
    recent = cube.dates >= first
    before = (cube.dates < first) & (cube.dates >= first - np.timedelta64(364, "D"))
    has_row = cube.status != MISSING

    def share(grid, days):
        cells = has_row[:, days]
        return float(grid[:, days][cells].mean()) if cells.any() else None

    rows_recent = has_row[:, recent].any(1)
    fitted = set(result.store_ids.tolist())
    levels = set(cube.covariates.state_holiday[:, recent][has_row[:, recent]].tolist())
    seen_levels = {name.rsplit("_", 1)[-1] for name in result.feature_names if name.startswith("state_holiday_")}
    return {
        "promo_share": {
            "recent": share(cube.covariates.promo > 0, recent),
            "year_before": share(cube.covariates.promo > 0, before),
        },
        "closed_share": {
            "recent": share(cube.status == CLOSED, recent),
            "year_before": share(cube.status == CLOSED, before),
        },
        "new_stores": sorted(set(cube.store_ids[rows_recent].tolist()) - fitted),
        "vanished_stores": sorted(fitted - set(cube.store_ids[rows_recent].tolist())),
        "new_variants": sorted({f"variant_{v}" for v in cube.covariates.variant_levels} - set(result.feature_names)),
        "new_holiday_levels": sorted(
            STATE_HOLIDAY_LEVELS[c] for c in levels if STATE_HOLIDAY_LEVELS[c] not in seen_levels
        ),
    }
