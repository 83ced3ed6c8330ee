"""Baseline forecasters, all with one signature: ``baseline(train, horizon) -> tidy frame``.

``train`` is the cube the baseline may learn from (only its observed cells count); ``horizon`` is
the cube window to forecast, with the same stores in the same order. The frame has the columns of
``predict.forecast`` (``FRAME_COLUMNS``): one row per (store, day of the horizon), ``method`` set to
the baseline's name, ``y`` the actual where the horizon observed it (NaN elsewhere, so only observed
cells are scored), interval and ``crps`` columns NaN where a baseline has no distribution. Like the
model, every baseline forecasts 0 on a closed day. Nothing here looks at the horizon's sales except
to copy them into ``y``.

Baselines (``BASELINES``, the registry the backtest runs):

- ``ols_log``: per-store ridge regression of log sales on the model's features. The ridge pulls
  toward the store's *own* mean log sales (on the seven weekday dummies, which act as the
  intercept) and toward 0 on every other coefficient, never toward other stores: this is the
  no-pooling end of the comparison, and the prior of "no effect around the store's own level" keeps
  the solve well-posed when a store has more features than days (a store-constant column such as
  the store variant, a holiday level never seen, a weekday the store was never open). Penalty 1 is
  one pseudo-observation per coefficient (the same in the cold-start trial, see there). The point is
  exp(x.theta) (the log-normal median); intervals and a closed-form CRPS come from a log-normal with
  the store's residual variance sigma^2 (residual sum of squares over n - effective degrees of
  freedom). Like the model, it is scored for RMSPE on the point its distribution recommends for
  that loss, exp(x.theta - 1.5 sigma^2) (``point_rmspe``), so the comparison is like for like.
- ``pooled``: one log-linear regression for all stores (complete pooling; store size enters only
  through the store-variant features), log-normal intervals from the pooled residual variance.
- ``median_dow_promo``: per-store median by weekday x promo over the last ``window`` days (365) of
  the training cube; an empty cell falls back to the weekday median, then the store's median over
  the window, then over its whole history, then the median over all stores.
- ``seasonal_naive``: the sales of the latest observed training day with the same weekday (the
  same weekday of the last week, or further back when that day was closed); falls back to the
  store's last observed day, then the median over all stores.
- ``mean`` (cold start): the store's mean sales over its training days.
- ``gbm``: the global LightGBM model a practitioner would pick instead (evaluation/gbm.py), with
  split-conformal intervals on log sales.
- ``legacy_ols``: per-store ordinary least squares on log sales with the reference features only,
  the regression the original research compared against.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from bhm_core.data.calendar import weekday_of
from bhm_core.data.cells import observed_cells
from bhm_core.data.cube import CLOSED, MISSING, SalesCube
from bhm_core.data.features import FeatureSpec
from bhm_core.errors import DataError
from bhm_core.evaluation.gbm import gbm
from bhm_core.evaluation.metrics import INTERVAL_LEVELS, interval_columns
from bhm_core.model.hierarchy import grid_linear_predictor, linear_predictor
from bhm_core.model.lsq import normal_equations, ridge

INTERVAL_COLUMNS = tuple(col for level in INTERVAL_LEVELS for col in interval_columns(level))
FRAME_COLUMNS = (
    "store",
    "date",
    "method",
    "y",
    "point",
    "median",
    "point_rmspe",
    *INTERVAL_COLUMNS,
    "crps",
    "open",
    "known",
)
OLS_PENALTY = 1.0  # pseudo-observations per coefficient (backtest: hundreds of days per store)
POOLED_PENALTY = 1e-3  # only keeps the pooled solve defined; the data dominate
MEDIAN_WINDOW_DAYS = 365

Baseline = Callable[[SalesCube, SalesCube], pd.DataFrame]


# ----------------------------------------------------------------------------------------------
# Shared plumbing


def _check_pair(train: SalesCube, horizon: SalesCube) -> None:
    if not np.array_equal(train.store_ids, horizon.store_ids):
        raise DataError(
            "a baseline needs the same stores in the training cube and the horizon "
            f"({train.n_stores} vs {horizon.n_stores} stores)"
        )
    if tuple(train.feature_names) != tuple(horizon.feature_names):
        raise DataError("the training cube and the horizon have different features")


def forecast_frame(
    horizon: SalesCube,
    method: str,
    point: np.ndarray,
    *,
    median=None,
    point_rmspe=None,
    intervals: dict | None = None,
    crps: np.ndarray | None = None,
) -> pd.DataFrame:
    """Tidy frame over every (store, day) of the horizon; arrays are (S, T). Closed days get 0.
    ``point_rmspe``: the point minimising the method's expected RMSPE where it has a distribution
    (NaN elsewhere: RMSPE is then scored on ``point``)."""
    shape = (horizon.n_stores, horizon.n_days)
    closed = horizon.status == CLOSED
    y = np.where(horizon.observed, horizon.sales, np.nan).astype(np.float64)
    nan = np.full(shape, np.nan)

    def cells(values, closed_value=0.0):
        values = np.broadcast_to(np.asarray(values, np.float64), shape)
        return np.where(closed, closed_value, values).ravel()

    point = cells(point)
    columns = {
        "store": np.repeat(horizon.store_ids, horizon.n_days),
        "date": np.tile(horizon.dates, horizon.n_stores),
        "method": method,
        "y": y.ravel(),
        "point": point,
        "median": point if median is None else cells(median),
        "point_rmspe": nan.ravel() if point_rmspe is None else cells(point_rmspe),
    }
    intervals = intervals or {}
    for col in INTERVAL_COLUMNS:
        columns[col] = cells(intervals[col]) if col in intervals else nan.ravel()
    columns["crps"] = nan.ravel() if crps is None else np.where(np.isnan(y), np.nan, crps).ravel()
    columns["open"] = (~closed).ravel()
    columns["known"] = (horizon.status != MISSING).ravel()
    frame = pd.DataFrame(columns)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.loc[:, list(FRAME_COLUMNS)]


def _linear_predictor(theta: np.ndarray, horizon: SalesCube) -> np.ndarray:
    """eta (S, T) over the horizon's design; theta (S, F) or (F,) for every store."""
    theta = np.broadcast_to(theta, (horizon.n_stores, horizon.design.n_features))
    return grid_linear_predictor(theta, horizon.design.index, horizon.design.value)


def crps_lognormal(y, mu, sigma) -> np.ndarray:
    """Closed-form CRPS of LogNormal(mu, sigma) at y > 0 (Baran and Lerch 2015); NaN where y is."""
    y, mu, sigma = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (y, mu, sigma)))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (np.log(y) - mu) / sigma
        out = y * (2 * ndtr(w) - 1) - 2 * np.exp(mu + sigma**2 / 2) * (ndtr(w - sigma) + ndtr(sigma / np.sqrt(2)) - 1)
    return np.where(y > 0, out, np.nan)


def _lognormal_frame(horizon: SalesCube, method: str, eta: np.ndarray, sigma: np.ndarray) -> pd.DataFrame:
    """Log-normal forecast: eta (S, T) the log median, sigma (S,) the per-store log-scale spread."""
    sigma = np.broadcast_to(np.asarray(sigma, np.float64)[:, None], eta.shape)
    intervals = {}
    for level in INTERVAL_LEVELS:
        z = ndtri(0.5 + level / 200)
        lo, hi = interval_columns(level)
        intervals[lo], intervals[hi] = np.exp(eta - z * sigma), np.exp(eta + z * sigma)
    y = np.where(horizon.observed, horizon.sales, np.nan)
    # E[1/y] / E[1/y^2] of a log-normal: the same Bayes decision for RMSPE the model's point takes
    # (predict.rmspe_optimal_point), so both are scored on the point their distribution recommends.
    return forecast_frame(
        horizon,
        method,
        np.exp(eta),
        point_rmspe=np.exp(eta - 1.5 * sigma**2),
        intervals=intervals,
        crps=crps_lognormal(y, eta, sigma),
    )


def _log_cells(train: SalesCube, method: str):
    """Observed training cells and their normal equations on log sales."""
    if not train.observed.any():
        raise DataError(f"{method}: the training cube has no observed store-days")
    cells = observed_cells(train)
    target = np.log(cells.y.astype(np.float64))
    xtx, xty, counts = normal_equations(
        cells.store, cells.index, cells.value, target, train.n_stores, train.design.n_features
    )
    return cells, target, xtx, xty, counts


def _fallback(values: np.ndarray, *alternatives: np.ndarray) -> np.ndarray:
    out = np.array(values, np.float64, copy=True)
    for alt in alternatives:
        out = np.where(np.isnan(out), alt, out)
    return out


def _global_median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else np.nan


# ----------------------------------------------------------------------------------------------
# Log-linear baselines


def ols_log(train: SalesCube, horizon: SalesCube, *, penalty: float = OLS_PENALTY) -> pd.DataFrame:
    """Per-store ridge regression on log sales, shrunk toward the store's own mean level."""
    _check_pair(train, horizon)
    cells, target, xtx, xty, counts = _log_cells(train, "ols_log")
    n_features = train.design.n_features
    level = np.bincount(cells.store, weights=target, minlength=train.n_stores) / np.maximum(counts, 1)
    level = np.where(counts > 0, level, np.average(level[counts > 0], weights=counts[counts > 0]))
    weekday = np.asarray(train.design.groups) == "weekday"
    toward = np.where(weekday[None, :], level[:, None], 0.0)
    theta = ridge(xtx, xty, penalty, toward)
    # Residual variance with the ridge's effective degrees of freedom tr((X'X + lambda I)^-1 X'X).
    eta = linear_predictor(theta, cells.store, cells.index, cells.value)
    rss = np.bincount(cells.store, weights=(target - eta) ** 2, minlength=train.n_stores)
    hat = np.linalg.solve(xtx + penalty * np.eye(n_features), xtx)
    dof = np.trace(hat, axis1=-2, axis2=-1)
    resid_var = rss / np.maximum(counts - dof, 1.0)
    usable = counts >= 2
    fallback_var = float(np.median(resid_var[usable])) if usable.any() else 0.1
    resid_var = np.where(usable, resid_var, fallback_var)
    return _lognormal_frame(horizon, "ols_log", _linear_predictor(theta, horizon), np.sqrt(resid_var))


def legacy_ols(train: SalesCube, horizon: SalesCube) -> pd.DataFrame:
    """Per-store ordinary least squares on log sales with the reference features only: the
    regression the original research compared against (min-norm where the one-hot levels are
    collinear), with log-normal intervals from the store's residual variance."""
    _check_pair(train, horizon)
    reference = FeatureSpec.reference()
    train, horizon = train.with_spec(reference), horizon.with_spec(reference)
    cells, target, xtx, xty, counts = _log_cells(train, "legacy_ols")
    theta = np.einsum("sfg,sg->sf", np.linalg.pinv(xtx, hermitian=True), xty)
    eta = linear_predictor(theta, cells.store, cells.index, cells.value)
    rss = np.bincount(cells.store, weights=(target - eta) ** 2, minlength=train.n_stores)
    rank = np.linalg.matrix_rank(xtx, hermitian=True)
    resid_var = rss / np.maximum(counts - rank, 1.0)
    usable = counts > rank
    resid_var = np.where(usable, resid_var, float(np.median(resid_var[usable])) if usable.any() else 0.1)
    return _lognormal_frame(horizon, "legacy_ols", _linear_predictor(theta, horizon), np.sqrt(resid_var))


def pooled(train: SalesCube, horizon: SalesCube, *, penalty: float = POOLED_PENALTY) -> pd.DataFrame:
    """One log-linear regression for all stores: what no store-level parameters give."""
    _check_pair(train, horizon)
    cells, target, xtx, xty, _counts = _log_cells(train, "pooled")
    theta = ridge(xtx.sum(0), xty.sum(0), penalty, np.zeros(train.design.n_features))
    eta = linear_predictor(theta[None, :], np.zeros_like(cells.store), cells.index, cells.value)
    sigma = float(np.sqrt(np.mean((target - eta) ** 2)))
    sigma = np.full(horizon.n_stores, sigma)
    return _lognormal_frame(horizon, "pooled", _linear_predictor(theta, horizon), sigma)


# ----------------------------------------------------------------------------------------------
# Robust per-store baselines


def _observed_frame(train: SalesCube, first=None) -> pd.DataFrame:
    """Long frame of the observed training cells (store row, weekday, promo, sales), from `first`."""
    store, day = np.nonzero(train.observed)
    if first is not None:
        keep = train.dates[day] >= first
        store, day = store[keep], day[keep]
    return pd.DataFrame(
        {
            "row": store,
            "weekday": weekday_of(train.dates)[day],
            "promo": train.covariates.promo[store, day].astype(np.int64),
            "sales": train.sales[store, day].astype(np.float64),
        }
    )


def _table(frame: pd.DataFrame, keys: list, shape: tuple) -> np.ndarray:
    """Median of sales per key combination as a dense array (NaN where a combination is empty)."""
    out = np.full(shape, np.nan)
    if len(frame):
        medians = frame.groupby(keys)["sales"].median()
        index = tuple(medians.index.get_level_values(k).to_numpy() for k in keys)
        out[index] = medians.to_numpy()
    return out


def median_dow_promo(train: SalesCube, horizon: SalesCube, *, window: int = MEDIAN_WINDOW_DAYS) -> pd.DataFrame:
    """Per-store median by weekday x promo over the last `window` days of the training cube."""
    _check_pair(train, horizon)
    if window < 1:
        raise DataError(f"median_dow_promo: the window must be at least one day, got {window}")
    start = train.dates[-1] - np.timedelta64(window - 1, "D")
    recent = _observed_frame(train, first=start)
    everything = _observed_frame(train)
    n = train.n_stores
    by_cell = _table(recent, ["row", "weekday", "promo"], (n, 7, 2))
    by_weekday = _table(recent, ["row", "weekday"], (n, 7))
    by_store = _table(recent, ["row"], (n,))
    by_store_all = _table(everything, ["row"], (n,))
    overall = _global_median(everything["sales"].to_numpy())

    rows = np.arange(n)[:, None]
    weekday = weekday_of(horizon.dates)[None, :].astype(np.int64)
    promo = (horizon.covariates.promo != 0).astype(np.int64)
    point = _fallback(
        by_cell[rows, weekday, promo], by_weekday[rows, weekday], by_store[:, None], by_store_all[:, None], overall
    )
    return forecast_frame(horizon, "median_dow_promo", point)


def seasonal_naive(train: SalesCube, horizon: SalesCube) -> pd.DataFrame:
    """Sales of the latest observed training day with the same weekday."""
    _check_pair(train, horizon)
    n = train.n_stores
    train_weekday = weekday_of(train.dates)
    last_by_weekday = np.full((n, 7), np.nan)
    for w in range(7):
        cols = np.flatnonzero(train_weekday == w)
        last_by_weekday[:, w] = _last_observed(train.observed[:, cols], train.sales[:, cols])
    last_any = _last_observed(train.observed, train.sales)
    overall = _global_median(last_any)
    weekday = weekday_of(horizon.dates)[None, :].astype(np.int64)
    point = _fallback(last_by_weekday[np.arange(n)[:, None], weekday], last_any[:, None], overall)
    return forecast_frame(horizon, "seasonal_naive", point)


def _last_observed(observed: np.ndarray, sales: np.ndarray) -> np.ndarray:
    """(S,) sales of each row's last observed column, NaN for a row with none."""
    if observed.shape[1] == 0:
        return np.full(observed.shape[0], np.nan)
    last = observed.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
    value = sales[np.arange(observed.shape[0]), last].astype(np.float64)
    return np.where(observed.any(axis=1), value, np.nan)


def mean(train: SalesCube, horizon: SalesCube) -> pd.DataFrame:
    """The store's mean sales over its observed training days (cold start: "the mean of K days")."""
    _check_pair(train, horizon)
    counts = train.observed.sum(1)
    totals = np.where(train.observed, train.sales, 0.0).sum(1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(counts > 0, totals / counts, np.nan)
    overall = _global_median(level)
    return forecast_frame(horizon, "mean", _fallback(level, overall)[:, None])


BASELINES: dict[str, Baseline] = {
    "gbm": gbm,
    "ols_log": ols_log,
    "legacy_ols": legacy_ols,
    "median_dow_promo": median_dow_promo,
    "seasonal_naive": seasonal_naive,
    "pooled": pooled,
}

# Cold start: the same per-store baselines, trained on the K known days only. ols_log keeps its
# penalty of 1: with K = 7 days and 23 coefficients that is already strong (the ridge toward the
# store's own level decides every effect the 7 days do not show). On Rossmann (115 stores x 7 days,
# seed 0) penalties 0.001 / 0.1 / 1 / 3 / 7 / 20 / 100 gave RMSPE 0.490 / 0.457 / 0.402 / 0.410 /
# 0.430 / 0.449 / 0.459: penalty 1 is about the best this baseline can do, so it is a fair opponent.
COLDSTART_BASELINES: dict[str, Baseline] = {
    "ols_log": ols_log,
    "legacy_ols": legacy_ols,
    "mean": mean,
    "median_dow_promo": median_dow_promo,
    "seasonal_naive": seasonal_naive,
}


def run_baselines(train: SalesCube, horizon: SalesCube, baselines: dict[str, Baseline] = BASELINES) -> pd.DataFrame:
    """Every baseline's frame, stacked; each frame's method column is set to its registry name."""
    return timed_baselines(train, horizon, baselines)[0]


def timed_baselines(
    train: SalesCube, horizon: SalesCube, baselines: dict[str, Baseline] = BASELINES
) -> tuple[pd.DataFrame, dict[str, float]]:
    """run_baselines' frame and each baseline's seconds (training and forecasting together)."""
    frames, seconds = [], {}
    for name, fn in baselines.items():
        start = time.perf_counter()
        frames.append(fn(train, horizon).assign(method=name))
        seconds[name] = time.perf_counter() - start
    if not frames:  # no baselines asked for: the model alone is scored
        return pd.DataFrame(columns=list(FRAME_COLUMNS)), seconds
    return pd.concat(frames, ignore_index=True), seconds
