"""Tables for reports and the dashboard: pure functions of an evaluation's summary and forecasts
(the metrics table, the best baseline and the lift over it, per-store lifts, interval calibration,
and where the error comes from)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.errors import DataError
from bhm_core.evaluation.metrics import INTERVAL_LEVELS, score
from bhm_core.forecast.predict import METHOD

METRIC_KEYS = ("rmspe", "mape", "mae", "rmse", "coverage_50", "coverage_90", "crps")


def metrics_table(summary: dict) -> pd.DataFrame:
    """One row per method (the model first), a column per METRIC_KEYS entry (NaN where absent)."""
    rows = [{"method": METHOD, **summary.get("model", {})}]
    rows += [{"method": name, **values} for name, values in summary.get("baselines", {}).items()]
    return pd.DataFrame(rows).reindex(columns=["method", *METRIC_KEYS])


def best_baseline(summary: dict) -> tuple[str | None, float | None]:
    """The baseline with the lowest RMSPE over all stores of the run, and that RMSPE."""
    ranked = sorted(
        (m["rmspe"], name) for name, m in summary.get("baselines", {}).items() if m.get("rmspe") is not None
    )
    return (ranked[0][1], ranked[0][0]) if ranked else (None, None)


def lift_percent(model: float | None, baseline: float | None) -> float | None:
    """How much lower the model's error is than the baseline's, in % of the baseline's."""
    if model is None or baseline is None or not baseline > 0:
        return None
    return 100.0 * (1.0 - model / baseline)


def store_lifts(summary: dict) -> pd.DataFrame:
    """Per store: model RMSPE, the best baseline's RMSPE on that store, and the lift in %."""
    rows = [
        {
            "store": e["store"],
            "rmspe": e["rmspe"],
            "baseline": e.get("baseline"),
            "baseline_rmspe": e.get("baseline_rmspe"),
            "lift_pct": lift_percent(e["rmspe"], e.get("baseline_rmspe")),
        }
        for e in summary.get("per_store", [])
    ]
    return pd.DataFrame(rows, columns=["store", "rmspe", "baseline", "baseline_rmspe", "lift_pct"])


def calibration(forecasts: pd.DataFrame, levels=INTERVAL_LEVELS) -> pd.DataFrame:
    """Nominal vs empirical coverage (method, level, coverage, n_cells) over the scored cells, for
    every method with intervals (point-only baselines have none and are left out)."""
    scored = forecasts[forecasts["y"].notna()]
    table = score(scored, by=("method",), levels=levels)
    rows = []
    for record in table.to_dict(orient="records"):
        for level in levels:
            value = record.get(f"coverage_{level}")
            if value is not None and np.isfinite(value):
                rows.append(
                    {
                        "method": record["method"],
                        "level": int(level),
                        "coverage": float(value),
                        "n_cells": int(record["n_cells"]),
                    }
                )
    return pd.DataFrame(rows, columns=["method", "level", "coverage", "n_cells"])


def error_sources(forecasts: pd.DataFrame, method: str = METHOD, sweeps: int = 50) -> dict:
    """Where a method's RMSPE comes from: each store's level over the horizon, chain-wide day
    shocks, or the rest, and what knowing each in advance would leave.

    The log error e = log(y / point) of each scored cell (y > 0; the RMSPE point where the method
    gives one) is split additively, by least squares, into a per-store level a_s, a per-date shock
    b_t shared by every store, and a remainder (alternating means, exact for a complete panel).
    The oracle RMSPEs score the point corrected by a_s, by b_t or by both (each centred over the
    cells): what a forecaster that knew each store's level over the horizon relative to the
    others, or each day's chain-wide shock, would have scored.
    A model can only approach the first with information available at the cutoff; the second
    needs foresight of the weather, events and the like, which the data does not hold.
    """
    frame = forecasts[(forecasts["method"] == method) & (forecasts["y"] > 0)]
    point = frame["point_rmspe"].fillna(frame["point"]) if "point_rmspe" in frame else frame["point"]
    frame = frame.assign(_point=point.to_numpy(float))
    frame = frame[frame["_point"] > 0]
    if frame.empty:
        raise DataError(f"no scored cells with a positive forecast for {method!r}")
    y, point = frame["y"].to_numpy(float), frame["_point"].to_numpy(float)
    error = np.log(y / point)
    store = pd.factorize(frame["store"])[0]
    day = pd.factorize(frame["date"])[0]
    n_store, n_day = store.max() + 1, day.max() + 1

    def group_mean(values, groups, n):
        return np.bincount(groups, values, n) / np.bincount(groups, minlength=n)

    level, shock = np.zeros(n_store), np.zeros(n_day)
    for _ in range(sweeps):
        level = group_mean(error - shock[day], store, n_store)
        shock = group_mean(error - level[store], day, n_day)
    # Centred, so that a correction moves stores or days relative to each other and keeps the
    # method's overall level: the RMSPE point sits below the median on purpose.
    part_level = level[store] - level[store].mean()
    part_shock = shock[day] - shock[day].mean()

    def oracle(correction):
        return float(np.sqrt(np.mean((1.0 - point * np.exp(correction) / y) ** 2)))

    return {
        "rmspe": oracle(0.0),
        "without_store_level": oracle(part_level),
        "without_day_shocks": oracle(part_shock),
        "without_both": oracle(part_level + part_shock),
        "sd_store_level": float(part_level.std()),
        "sd_day_shocks": float(part_shock.std()),
        "sd_rest": float((error - part_level - part_shock).std()),
        "n_cells": len(y),
    }
