"""Forecast evaluation metrics over numpy arrays and over the project's tidy forecast frame.

Every forecaster returns the same tidy frame (``FORECAST_COLUMNS``), so one ``score`` call compares
them all. Array functions are NaN-aware: a cell whose actual or forecast is NaN is dropped rather
than poisoning the mean, because held-out windows routinely contain closed days and unknown sales.
Nothing here raises or warns on empty input; a metric with nothing to score is NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from bhm_core.errors import ConfigError, DataError

INTERVAL_LEVELS: tuple[int, ...] = (50, 80, 90, 95)
REQUIRED_COLUMNS: tuple[str, ...] = ("store", "date", "method", "y", "point")


def interval_columns(level: int) -> tuple[str, str]:
    """Names of the lower and upper bound columns of the central ``level``% interval."""
    return f"lo_{level}", f"hi_{level}"


FORECAST_COLUMNS: tuple[str, ...] = (
    REQUIRED_COLUMNS + tuple(col for level in INTERVAL_LEVELS for col in interval_columns(level)) + ("crps",)
)

POINT_METRICS: tuple[str, ...] = ("rmspe", "mape", "mae", "rmse", "bias")

# Samples per CRPS block: bounds the working copies (sorted + float64 + |X - y|) to ~20 MB whatever n is.
_CRPS_BLOCK_ELEMENTS = 1_000_000


# --------------------------------------------------------------------------------------------
# Array level
# --------------------------------------------------------------------------------------------


def _as_float_arrays(*arrays) -> list[np.ndarray]:
    """Float64, broadcast to one shape, flattened; bad input becomes a DataError."""
    try:
        converted = [np.asarray(a, dtype=np.float64) for a in arrays]
    except (TypeError, ValueError) as exc:
        raise DataError(f"expected numeric arrays, got values that are not numbers ({exc})") from None
    try:
        broadcast = np.broadcast_arrays(*converted)
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in converted)
        raise DataError(f"expected arrays of the same shape, got shapes {shapes}") from None
    return [b.ravel() for b in broadcast]


def _known(*arrays: np.ndarray) -> np.ndarray:
    # Only NaN means "unknown"; an infinite forecast is a real (broken) forecast and must show up.
    mask = np.ones(arrays[0].shape, dtype=bool)
    for a in arrays:
        mask &= ~np.isnan(a)
    return mask


def _mean(values: np.ndarray) -> float:
    # np.mean of an empty array warns; an empty selection is simply "nothing to score".
    return float(values.mean()) if values.size else float("nan")


def _errors(y, yhat, *, positive_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Actuals and forecast-minus-actual over the cells that can be scored."""
    y, yhat = _as_float_arrays(y, yhat)
    mask = _known(y, yhat)
    if positive_only:
        # Percentage errors are undefined at y = 0 (closed stores); Kaggle's Rossmann rule drops them.
        mask &= y > 0
    return y[mask], yhat[mask] - y[mask]


def rmspe(y, yhat) -> float:
    """Root mean squared percentage error (as a fraction) over cells with y > 0."""
    actual, err = _errors(y, yhat, positive_only=True)
    return float(np.sqrt(_mean((err / actual) ** 2)))


def mape(y, yhat) -> float:
    """Mean absolute percentage error (as a fraction) over cells with y > 0."""
    actual, err = _errors(y, yhat, positive_only=True)
    return _mean(np.abs(err) / actual)


def mae(y, yhat) -> float:
    """Mean absolute error."""
    return _mean(np.abs(_errors(y, yhat)[1]))


def rmse(y, yhat) -> float:
    """Root mean squared error."""
    return float(np.sqrt(_mean(_errors(y, yhat)[1] ** 2)))


def bias(y, yhat) -> float:
    """Mean of yhat - y: positive means over-forecasting."""
    return _mean(_errors(y, yhat)[1])


def coverage(y, lo, hi) -> float:
    """Fraction of cells with lo <= y <= hi (both ends inclusive)."""
    y, lo, hi = _as_float_arrays(y, lo, hi)
    mask = _known(y, lo, hi)
    y, lo, hi = y[mask], lo[mask], hi[mask]
    return _mean(((lo <= y) & (y <= hi)).astype(np.float64))


def interval_width(lo, hi) -> float:
    """Mean hi - lo."""
    lo, hi = _as_float_arrays(lo, hi)
    mask = _known(lo, hi)
    return _mean(hi[mask] - lo[mask])


def _check_quantile(q: float) -> float:
    q = float(q)
    if not 0.0 < q < 1.0:
        raise ConfigError(f"quantile level must lie strictly between 0 and 1, got {q}")
    return q


def _pinball_terms(y: np.ndarray, q_pred: np.ndarray, q: float) -> np.ndarray:
    diff = y - q_pred
    return np.maximum(q * diff, (q - 1.0) * diff)


def pinball(y, q_pred, q: float) -> float:
    """Mean quantile (pinball) loss of ``q_pred`` as the q-quantile forecast, q in (0, 1)."""
    q = _check_quantile(q)
    y, q_pred = _as_float_arrays(y, q_pred)
    mask = _known(y, q_pred)
    return _mean(_pinball_terms(y[mask], q_pred[mask], q))


def _check_level(level) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)):
        raise ConfigError(f"interval level must be a number in (0, 100), got {level!r}")
    if not 0 < level < 100 or float(level) != int(level):
        # Integer percent only: the level is part of the column name (lo_80), so 97.5 has no column.
        raise ConfigError(f"interval level must be a whole percent in (0, 100), got {level!r}")
    return int(level)


def interval_score(y, lo, hi, level: int) -> float:
    """Mean Gneiting-Raftery interval score of the central ``level``% interval (lower is better)."""
    alpha = 1.0 - _check_level(level) / 100.0
    y, lo, hi = _as_float_arrays(y, lo, hi)
    mask = _known(y, lo, hi)
    y, lo, hi = y[mask], lo[mask], hi[mask]
    below = np.maximum(lo - y, 0.0)
    above = np.maximum(y - hi, 0.0)
    return _mean((hi - lo) + (2.0 / alpha) * (below + above))


def crps_from_samples(y, samples, presorted: bool = False) -> np.ndarray:
    """Per-cell CRPS of the empirical distribution of ``samples`` (n, m) at ``y`` (n,).

    Exact for the empirical distribution: E|X - y| - 0.5 E|X - X'|, the second term from the
    sorted samples in O(m log m). A cell with NaN in y or in any of its samples scores NaN.
    presorted: each row of samples is already in ascending order (skips the sort).
    """
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("expected numeric actuals y for CRPS, got values that are not numbers") from None
    samples = np.asarray(samples)
    if y.ndim != 1 or samples.ndim != 2 or samples.shape[0] != y.shape[0]:
        raise DataError(f"expected y of shape (n,) and samples of shape (n, m), got {y.shape} and {samples.shape}")
    if not (np.issubdtype(samples.dtype, np.number) or samples.dtype == bool):
        raise DataError(f"expected numeric samples, got dtype {samples.dtype}")
    n, m = samples.shape
    out = np.full(n, np.nan)
    if n == 0 or m == 0:
        return out
    # For sorted x_(1..m): E|X - X'| = (2 / m^2) * sum_i (2i - m - 1) x_(i).
    weights = (2.0 * np.arange(1, m + 1) - m - 1.0) * (2.0 / m**2)
    rows = max(1, _CRPS_BLOCK_ELEMENTS // m)
    # Blocks keep the sorted float64 copy small, so 50k cells x 500 float32 samples never doubles
    # (let alone quadruples) the caller's memory.
    for start in range(0, n, rows):
        block = samples[start : start + rows]
        block = (block if presorted else np.sort(block, axis=1)).astype(np.float64, copy=False)
        y_block = y[start : start + rows]
        spread = block @ weights
        dev = block - y_block[:, None]
        np.abs(dev, out=dev)
        out[start : start + rows] = dev.mean(axis=1) - 0.5 * spread
    return out


# --------------------------------------------------------------------------------------------
# Frame level
# --------------------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame of forecasts, got {type(frame).__name__}")
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise DataError(
            f"forecast frame is missing required column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns)) or 'no columns'}"
        )


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    series = frame[column]
    if not pd.api.types.is_numeric_dtype(series.dtype):
        raise DataError(f"column '{column}' must be numeric, got dtype {series.dtype}")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _levels_present(frame: pd.DataFrame, levels: Sequence) -> list[int]:
    """Levels whose lo/hi columns are both in the frame; half an interval is malformed input."""
    present = []
    for level in dict.fromkeys(_check_level(lv) for lv in levels):
        lo, hi = interval_columns(level)
        has_lo, has_hi = lo in frame.columns, hi in frame.columns
        if has_lo != has_hi:
            missing, found = (hi, lo) if has_lo else (lo, hi)
            raise DataError(f"forecast frame has interval column '{found}' but not '{missing}'")
        if has_lo:
            present.append(level)
    return present


def _nan_where(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)


def _cell_terms(frame: pd.DataFrame, levels: list[int]) -> dict[str, np.ndarray]:
    """Per-cell loss terms, NaN where a cell cannot be scored, so a group mean is the metric."""
    y, point = _numeric(frame, "y"), _numeric(frame, "point")
    has_y = ~np.isnan(y)
    scored = has_y & ~np.isnan(point)
    positive = scored & (y > 0)
    err = point - y
    # Dividing only where y > 0 avoids divide-by-zero warnings instead of silencing them.
    pct = np.divide(err, y, out=np.full_like(err, np.nan), where=positive)
    if "point_rmspe" in frame.columns:
        # A probabilistic forecaster may name the point that minimises its expected RMSPE
        # (predict.rmspe_optimal_point); RMSPE is scored on it where given, on `point` elsewhere.
        special = _numeric(frame, "point_rmspe")
        rmspe_point = np.where(np.isnan(special), point, special)
        pct2 = np.divide(rmspe_point - y, y, out=np.full_like(err, np.nan), where=positive & ~np.isnan(rmspe_point))
    else:
        pct2 = pct
    terms = {
        "ape2": pct2**2,
        "ape": np.abs(pct),
        "ae": _nan_where(np.abs(err), scored),
        "se": _nan_where(err**2, scored),
        "err": _nan_where(err, scored),
    }
    for level in levels:
        lo_col, hi_col = interval_columns(level)
        lo, hi = _numeric(frame, lo_col), _numeric(frame, hi_col)
        # Width only over cells with a known actual, so coverage and width describe the same cells.
        known = has_y & ~np.isnan(lo) & ~np.isnan(hi)
        terms[f"coverage_{level}"] = _nan_where(((lo <= y) & (y <= hi)).astype(np.float64), known)
        terms[f"width_{level}"] = _nan_where(hi - lo, known)
        for col, bound, q in ((lo_col, lo, (1 - level / 100) / 2), (hi_col, hi, (1 + level / 100) / 2)):
            terms[f"pinball_{col}"] = _nan_where(_pinball_terms(y, bound, q), has_y & ~np.isnan(bound))
    if "crps" in frame.columns:
        terms["crps"] = _nan_where(_numeric(frame, "crps"), has_y)
    return terms


def _as_tuple(by) -> tuple[str, ...]:
    return (by,) if isinstance(by, str) else tuple(by)


def score(frame: pd.DataFrame, by=("method",), levels: Sequence[int] = INTERVAL_LEVELS) -> pd.DataFrame:
    """One row per ``by`` group: point metrics, n_cells, and interval/pinball/crps where present.

    Only cells with a known actual are scored. Interval columns appear for each level in
    ``levels`` whose lo/hi columns are in the frame, ``pinball`` (mean over all interval
    endpoints) when any does, ``crps`` when the frame has a crps column; a group whose values
    there are all NaN gets NaN.
    """
    by = _as_tuple(by)
    _require_columns(frame, REQUIRED_COLUMNS + by)
    present = _levels_present(frame, levels)
    terms = _cell_terms(frame, present)

    # Terms go into their own prefixed columns so they can never collide with a grouping column.
    cells = frame.loc[:, list(by)].reset_index(drop=True)
    cells = pd.concat([cells, pd.DataFrame({f"__{k}": v for k, v in terms.items()})], axis=1)
    grouped = cells.groupby(list(by), sort=True, dropna=False, observed=True)
    means = grouped.mean()
    means.columns = [c[2:] for c in means.columns]

    result = pd.DataFrame(index=means.index)
    result["rmspe"] = np.sqrt(means["ape2"])
    result["mape"] = means["ape"]
    result["mae"] = means["ae"]
    result["rmse"] = np.sqrt(means["se"])
    result["bias"] = means["err"]
    result["n_cells"] = grouped["__ae"].count().astype(np.int64)
    for level in present:
        result[f"coverage_{level}"] = means[f"coverage_{level}"]
        result[f"width_{level}"] = means[f"width_{level}"]
    pin_cols = [f"__{k}" for k in terms if k.startswith("pinball_")]
    if pin_cols:
        # Pooled over every (cell, endpoint) pair, so a level missing in some cells is not reweighted.
        total = grouped[pin_cols].sum().sum(axis=1)
        count = grouped[pin_cols].count().sum(axis=1)
        result["pinball"] = (total / count.where(count > 0)).astype(np.float64)
    if "crps" in terms:
        result["crps"] = means["crps"]
    return result.reset_index()


def score_dict(frame: pd.DataFrame, levels: Sequence[int] = INTERVAL_LEVELS) -> dict[str, dict[str, float]]:
    """``{method: {metric: value}}`` with NaN metrics dropped; JSON-ready plain floats."""
    table = score(frame, by=("method",), levels=levels)
    out: dict[str, dict[str, float]] = {}
    for row in table.to_dict(orient="records"):
        method = str(row.pop("method"))
        out[method] = {k: float(v) for k, v in row.items() if not pd.isna(v)}
    return out


def metric_names(levels: Sequence[int] = INTERVAL_LEVELS) -> tuple[str, ...]:
    """Every metric name ``score`` can produce for these levels."""
    checked = [_check_level(lv) for lv in levels]
    per_level = tuple(name for lv in checked for name in (f"coverage_{lv}", f"width_{lv}"))
    return (*POINT_METRICS, "n_cells", *per_level, "pinball", "crps")


def per_store(frame: pd.DataFrame, metric: str = "rmspe", levels: Sequence[int] = INTERVAL_LEVELS) -> pd.DataFrame:
    """Columns store, method, ``metric``: one row per (store, method), for per-store lift charts."""
    known = metric_names(levels)
    if metric not in known:
        raise ConfigError(f"unknown metric '{metric}'; expected one of {', '.join(known)}")
    table = score(frame, by=("store", "method"), levels=levels)
    if metric not in table.columns:
        raise DataError(
            f"metric '{metric}' needs columns the forecast frame lacks "
            f"(interval columns for coverage/width/pinball, 'crps' for crps)"
        )
    return table.loc[:, ["store", "method", metric]]
