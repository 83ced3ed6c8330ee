"""Backtest: the hierarchical model against the baselines, on held-out days.

Both return an ``Evaluation``: ``summary`` (the backtest's JSON contract, plain Python types, no NaN)
and ``forecasts`` (the tidy frame of every method's forecasts, for the dashboard). Only cells whose
sales were observed in the horizon are scored (closed and missing days are not).

Backtest: fit on days up to and including the cutoff, forecast the next ``horizon`` days with the
known promo/holiday calendar, run every baseline on the same training days.

The cold-start trial (``evaluation/coldstart.py``) returns an ``Evaluation`` too.

``anomalies`` (``evaluation/anomalies.py``) lists the scored store-days whose sales lie far below
every method's range and the store's usual level, and gives every method's RMSPE with and without
them; ``baseline_seconds`` each baseline's seconds (training and forecasting).

``per_store`` compares each store's model RMSPE with the RMSPE, on that store, of the baseline that
is best over all stores in this run (named in each entry as ``baseline``): a fixed, fair
competitor, not the per-store minimum over baselines, which would be an oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from bhm_core.data.cube import SalesCube
from bhm_core.errors import BhmError, ConfigError, DataError
from bhm_core.evaluation.anomalies import anomaly_summary, store_medians
from bhm_core.evaluation.baselines import BASELINES, Baseline, timed_baselines
from bhm_core.evaluation.metrics import coverage, per_store, rmspe, score_dict
from bhm_core.evaluation.tables import METRIC_KEYS, best_baseline, error_sources
from bhm_core.forecast.predict import METHOD, forecast_with_total
from bhm_core.inference.fit import fit
from bhm_core.inference.state import FitResult
from bhm_core.model.config import FitConfig, Priors

DEFAULT_HORIZON = 42


@dataclass(frozen=True, eq=False)
class Evaluation:
    summary: dict  # the JSON contract of a backtest
    forecasts: pd.DataFrame  # every method's forecasts in the metrics schema
    fit: FitResult | None = field(default=None, repr=False)  # the (global) fit
    local_fit: FitResult | None = field(default=None, repr=False)  # cold start: the new stores' fit

    @cached_property
    def anatomy(self) -> dict:
        """{method: error_sources(...)} for the model and the run's best baseline (computed once
        per evaluation; methods with nothing scored are left out)."""
        best, _ = best_baseline(self.summary)
        out = {}
        for method in [METHOD] + ([best] if best else []):
            try:
                out[method] = error_sources(self.forecasts, method)
            except DataError:
                continue
        return out


class EvaluationCancelled(BhmError):
    """should_stop() asked a backtest or cold-start trial to stop during one of its fits."""


def _fit_or_stop(result: FitResult, what: str) -> FitResult:
    if result.meta.get("cancelled"):
        raise EvaluationCancelled(f"{what} cancelled after {len(result.losses):,} steps; nothing was scored")
    return result


# ----------------------------------------------------------------------------------------------
# Validation helpers


def _day(value, what: str) -> np.datetime64:
    try:  # strict ISO for text ("June" would otherwise parse as some June)
        if isinstance(value, str):
            return np.datetime64(value.strip(), "D")
        return np.datetime64(pd.Timestamp(value).date(), "D")
    except (ValueError, TypeError):
        raise ConfigError(f"{what} must be a date like 2015-06-19, got {value!r}") from None


def _positive_int(value, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def choose_stores(cube: SalesCube, stores=None, seed: int = 0) -> np.ndarray:
    """None: every store; an int N: N seeded-random stores (sorted); a sequence: those store ids."""
    if stores is None:
        return cube.store_ids.copy()
    if isinstance(stores, (int, np.integer)) and not isinstance(stores, bool):
        if not 1 <= stores <= cube.n_stores:
            raise ConfigError(
                f"the number of stores must be in 1..{cube.n_stores} (the data has "
                f"{cube.n_stores} stores), got {stores}"
            )
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(cube.store_ids, size=int(stores), replace=False))
    ids = np.unique(np.asarray(stores, dtype=np.int64))
    cube.store_rows(ids)  # unknown ids raise DataError naming them
    return ids


# ----------------------------------------------------------------------------------------------
# Scoring


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _metrics(scores: dict) -> dict:
    return {k: _finite(scores[k]) for k in METRIC_KEYS if k in scores and math.isfinite(scores[k])}


def score_summary(forecasts: pd.DataFrame) -> dict:
    """n_scored_cells, model and baseline metrics, per-store comparison with the best baseline."""
    scored = forecasts[forecasts["y"].notna()]
    if scored.empty:
        raise DataError("nothing to score: no sales were observed in the forecast window")
    by_method = score_dict(scored)
    model = _metrics(by_method.get(METHOD, {}))
    baselines = {name: _metrics(by_method[name]) for name in dict.fromkeys(scored["method"]) if name != METHOD}
    ranked = sorted((m.get("rmspe", math.inf), name) for name, m in baselines.items())
    best = ranked[0][1] if ranked else None
    table = per_store(scored, "rmspe").pivot(index="store", columns="method", values="rmspe")
    rows = []
    for store, row in table.iterrows():
        model_rmspe = _finite(row.get(METHOD, np.nan))
        if model_rmspe is None:
            continue
        rows.append(
            {
                "store": int(store),
                "rmspe": model_rmspe,
                "baseline_rmspe": _finite(row.get(best, np.nan)) if best else None,
                "baseline": best,
            }
        )
    n_cells = int((scored["method"] == METHOD).sum())
    return {"n_scored_cells": n_cells, "model": model, "baselines": baselines, "per_store": rows}


def rounded_seconds(seconds: dict[str, float]) -> dict[str, float]:
    """{baseline: seconds} as the summary holds them (training and forecasting, milliseconds)."""
    return {name: round(float(value), 3) for name, value in seconds.items()}


def _fit_fields(result: FitResult) -> dict:
    meta = result.meta
    return {
        "fit_seconds": round(float(meta.get("seconds", 0.0)), 3),
        "compile_seconds": round(float(meta.get("compile_seconds", 0.0)), 3),
        "steps": int(meta.get("steps", 0)),
        "final_loss": _finite(result.final_loss),
    }


# ----------------------------------------------------------------------------------------------
# Backtest


def check_window(cube: SalesCube, cutoff, horizon: int) -> tuple[np.datetime64, int, np.datetime64]:
    """(cutoff, horizon, last forecast day) after checking them against the data; ConfigError
    naming the allowed range otherwise. Cheap: a form can call it before anything is fitted."""
    horizon = _positive_int(horizon, "horizon (days)")
    cutoff = _day(cutoff, "cutoff")
    first, last = cube.dates[0], cube.dates[-1]
    if not first <= cutoff < last:
        raise ConfigError(
            f"cutoff {cutoff} is outside the data: it must be on or after {first} and "
            f"before {last} (the last day of the data), so that days remain to forecast"
        )
    end = cutoff + np.timedelta64(horizon, "D")
    if end > last:
        raise ConfigError(
            f"cutoff {cutoff} + horizon {horizon} days ends on {end}, after the last day "
            f"of the data ({last}); choose a cutoff on or before "
            f"{last - np.timedelta64(horizon, 'D')} or a horizon of at most "
            f"{int((last - cutoff).astype(int))} days"
        )
    return cutoff, horizon, end


def backtest(
    cube: SalesCube,
    cutoff,
    horizon: int,
    *,
    stores=None,
    seed: int = 0,
    config: FitConfig | None = None,
    priors: Priors | None = None,
    n_samples: int = 500,
    baselines: dict[str, Baseline] = BASELINES,
    on_progress=None,
    should_stop=None,
) -> Evaluation:
    """Fit on days <= cutoff, forecast cutoff+1 .. cutoff+horizon, score model and baselines.

    should_stop() returning True during the fit raises EvaluationCancelled."""
    cutoff, horizon, end = check_window(cube, cutoff, horizon)
    ids = choose_stores(cube, stores, seed)
    sub = cube.select_stores(ids) if len(ids) < cube.n_stores else cube
    # The trend's origin is the last training day, as in a fit on all the data (Covariates.origin).
    sub = sub.with_origin(cutoff)
    train = sub.select_days(None, cutoff)
    window = sub.select_days(cutoff + np.timedelta64(1, "D"), end)
    if not train.observed.any():
        raise DataError(f"no observed sales on or before the cutoff {cutoff} for the chosen stores")
    if not window.observed.any():
        raise DataError(
            f"no observed sales between {cutoff + np.timedelta64(1, 'D')} and {end} for "
            f"the chosen stores: nothing to score"
        )

    result = _fit_or_stop(
        fit(train, config or FitConfig(seed=seed), priors, on_progress=on_progress, should_stop=should_stop),
        "the backtest",
    )
    model_frame, total = forecast_with_total(
        result, sub, ids, window.dates[0], window.dates[-1], n_samples=n_samples, seed=seed
    )
    baseline_frame, seconds = timed_baselines(train, window, baselines)
    frames = pd.concat([model_frame, *([baseline_frame] if len(baseline_frame) else [])], ignore_index=True)
    summary = {
        "cutoff": str(cutoff),
        "horizon": horizon,
        "n_stores": len(ids),
        **score_summary(frames),
        **_fit_fields(result),
        "baseline_seconds": rounded_seconds(seconds),
        "total": total_calibration(total),
        "anomalies": anomaly_summary(frames, store_medians(train)),
    }
    return Evaluation(_ordered(summary), frames, result)


def total_calibration(total: pd.DataFrame) -> dict:
    """How the model's forecast of the daily total over the stores held (a frame of
    `predict.forecast_total(observed_only=True)`), on the days with sales: n_days, coverage_50,
    coverage_90 and rmspe of the total. {} when no day has sales."""
    total = total[total["y"] > 0]
    if total.empty:
        return {}
    return {
        "n_days": len(total),
        **{
            f"coverage_{level}": float(coverage(total["y"], total[f"lo_{level}"], total[f"hi_{level}"]))
            for level in (50, 90)
        },
        "rmspe": float(rmspe(total["y"], total["point_rmspe"])),
    }


_ORDER = (
    "cutoff",
    "horizon",
    "n_stores",
    "n_scored_cells",
    "model",
    "baselines",
    "per_store",
    "fit_seconds",
    "compile_seconds",
    "steps",
    "final_loss",
)


def _ordered(summary: dict) -> dict:
    head = {k: summary[k] for k in _ORDER if k in summary}
    return {**head, **{k: v for k, v in summary.items() if k not in head}}
