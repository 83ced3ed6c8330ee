"""Backtest and cold-start trial: the hierarchical model against the baselines, on held-out days.

Both return an ``Evaluation``: ``summary`` (the JSON object of issue 4, plain Python types, no NaN)
and ``forecasts`` (the tidy frame of every method's forecasts, for the dashboard). Only cells whose
sales were observed in the horizon are scored (closed and missing days are not).

Backtest: fit on days up to and including the cutoff, forecast the next ``horizon`` days with the
known promo/holiday calendar, run every baseline on the same training days.

Cold start: hold out N seeded-random stores, fit the hierarchy on the others over all days, then
give each held-out store its first K observed days (counted from its first open day), fit its local
parameters with the global posterior frozen (``inference.coldstart.fit_new_stores``) and forecast the
``horizon`` calendar days after its K-th known day. Stores start at different dates, so windows are
per store: stores are grouped by their K-th known day, and each group is forecast (model and
baselines) over its own window; the scores pool every store's window.

``per_store`` compares each store's model RMSPE with the RMSPE, on that store, of the baseline that
is best over all stores in this run (named in each entry as ``baseline``): a fixed, fair
competitor, not the per-store minimum over baselines, which would be an oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from bhm_core.data.cube import SalesCube
from bhm_core.errors import BhmError, ConfigError, DataError
from bhm_core.evaluation.baselines import BASELINES, COLDSTART_BASELINES, Baseline, run_baselines
from bhm_core.evaluation.metrics import INTERVAL_LEVELS, coverage, per_store, rmspe, score, score_dict
from bhm_core.forecast.predict import METHOD, forecast, forecast_with_total
from bhm_core.inference.coldstart import fit_new_stores
from bhm_core.inference.fit import fit
from bhm_core.inference.state import FitResult
from bhm_core.model.config import FitConfig, Priors

METRIC_KEYS = ("rmspe", "mape", "mae", "rmse", "coverage_50", "coverage_90", "crps")
DEFAULT_HORIZON = 42


@dataclass(frozen=True, eq=False)
class Evaluation:
    summary: dict  # the JSON object (issue 4)
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
    frames = pd.concat([model_frame, run_baselines(train, window, baselines)], ignore_index=True)
    summary = {
        "cutoff": str(cutoff),
        "horizon": horizon,
        "n_stores": len(ids),
        **score_summary(frames),
        **_fit_fields(result),
        "total": total_calibration(total),
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


# ----------------------------------------------------------------------------------------------
# Cold start


@dataclass(frozen=True)
class _Window:
    store: int
    first_known: np.datetime64
    last_known: np.datetime64  # the K-th observed day


def known_windows(cube: SalesCube, store_ids, known_days: int, horizon: int) -> list[_Window]:
    """Each store's first K observed days; errors when a store has fewer or no room for the horizon."""
    windows, short, late = [], [], []
    for store, row in zip(store_ids, cube.store_rows(store_ids)):
        days = np.flatnonzero(cube.observed[row])
        if len(days) < known_days:
            short.append((int(store), len(days)))
            continue
        kth = days[known_days - 1]
        if kth + horizon > cube.n_days - 1:
            late.append(int(store))
        windows.append(_Window(int(store), cube.dates[days[0]], cube.dates[kth]))
    if short:
        fewest = min(n for _, n in short)
        raise ConfigError(
            f"known days K = {known_days} is more than store(s) "
            f"{[s for s, _ in short][:10]} have observed days ({fewest} at least); "
            f"choose K <= {fewest} or other stores (another seed)"
        )
    if late:
        raise ConfigError(
            f"with K = {known_days} known days, store(s) {late[:10]} leave fewer than "
            f"horizon = {horizon} days of data after their K-th known day; choose a "
            f"smaller K or horizon"
        )
    return windows


def _mask_known(cube: SalesCube, windows: list[_Window]) -> SalesCube:
    """The new stores' cube up to the last K-th day, observed only on each store's known days."""
    span = cube.select_days(None, max(w.last_known for w in windows))
    last = np.array([w.last_known for w in windows], dtype="datetime64[D]")
    keep = span.observed & (span.dates[None, :] <= last[:, None])
    return replace(span, observed=keep, sales=np.where(keep, span.sales, 0).astype(span.sales.dtype))


def check_coldstart(cube: SalesCube, new_ids, known_days: int, horizon: int) -> list[_Window]:
    """Each new store's known window after checking K, the horizon and the ids (cheap; no fit)."""
    known_days = _positive_int(known_days, "known days K")
    horizon = _positive_int(horizon, "horizon (days)")
    new_ids = np.unique(np.asarray(new_ids, dtype=np.int64))
    if new_ids.size == 0:
        raise ConfigError("choose at least one store to treat as new")
    return known_windows(cube, new_ids, known_days, horizon)


def coldstart(
    global_fit: FitResult,
    cube: SalesCube,
    new_ids,
    known_days: int,
    horizon: int = DEFAULT_HORIZON,
    *,
    seed: int = 0,
    config: FitConfig | None = None,
    n_samples: int = 500,
    baselines: dict[str, Baseline] = COLDSTART_BASELINES,
    on_progress=None,
    should_stop=None,
) -> Evaluation:
    """Forecast the given stores as new from their first K observed days, the hierarchy frozen.

    global_fit: a fit of the hierarchy on other stores of this cube (same features). The new
    stores' local parameters are fitted on their K known days (inference.coldstart.fit_new_stores with
    `config`), then each store is forecast over the `horizon` days after its K-th known day,
    together with the cold-start baselines trained on the same K days.
    """
    windows = check_coldstart(cube, new_ids, known_days, horizon)
    new_ids = np.array([w.store for w in windows], dtype=np.int64)
    overlap = np.intersect1d(new_ids, global_fit.store_ids)
    if overlap.size:
        raise ConfigError(
            f"store(s) {overlap[:10].tolist()} are in the fit of the hierarchy, so they "
            f"are not new to it; fit the hierarchy without them"
        )
    # Each new store's trend starts at its own last known day: with the origin years away, the
    # store's level and trend would be confounded over its few known days (Covariates.origin).
    by_id = {w.store: w.last_known for w in windows}
    new = cube.select_stores(new_ids)
    # Their yearly profile (from K days: none) falls back to the hierarchy's stores' mean profile.
    season = cube.covariates.season
    others = ~np.isin(cube.store_ids, new_ids)
    fallback = season[others].mean(0) if others.any() else None
    new = new.with_origin(
        np.array([by_id[int(s)] for s in new.store_ids], dtype="datetime64[D]"), season_fallback=fallback
    )
    known = _mask_known(new, windows)
    local_fit = _fit_or_stop(
        fit_new_stores(
            global_fit, known, config or global_fit.config, on_progress=on_progress, should_stop=should_stop
        ),
        "the new stores' fit",
    )
    frames = []
    for last_known in sorted({w.last_known for w in windows}):
        ids = np.array([w.store for w in windows if w.last_known == last_known], dtype=np.int64)
        first, end = last_known + np.timedelta64(1, "D"), last_known + np.timedelta64(horizon, "D")
        frames.append(forecast(local_fit, new, ids, first, end, n_samples=n_samples, seed=seed))
        train = known.select_stores(ids).select_days(None, last_known)
        frames.append(run_baselines(train, new.select_stores(ids).select_days(first, end), baselines))
    forecasts = pd.concat(frames, ignore_index=True)

    scores = score_summary(forecasts)
    by_store = {w.store: w for w in windows}
    for entry in scores["per_store"]:
        w = by_store[entry["store"]]
        entry.update(first_known=str(w.first_known), last_known=str(w.last_known))
    fit_fields = _fit_fields(global_fit)
    local = _fit_fields(local_fit)
    fit_fields["fit_seconds"] = round(fit_fields["fit_seconds"] + local["fit_seconds"], 3)
    fit_fields["compile_seconds"] = round(fit_fields["compile_seconds"] + local["compile_seconds"], 3)
    summary = {
        "cutoff": None,
        "horizon": int(horizon),
        "n_stores": len(new_ids),
        **scores,
        **fit_fields,
        "new_stores": [int(s) for s in new_ids],
        "known_days": int(known_days),
        "n_fit_stores": len(global_fit.store_ids),
        "local_fit": local,
    }
    return Evaluation(_ordered(summary), forecasts, global_fit, local_fit)


def coldstart_trial(
    cube: SalesCube,
    new_stores: int,
    known_days: int,
    horizon: int = DEFAULT_HORIZON,
    *,
    seed: int = 0,
    config: FitConfig | None = None,
    local_config: FitConfig | None = None,
    priors: Priors | None = None,
    n_samples: int = 500,
    baselines: dict[str, Baseline] = COLDSTART_BASELINES,
    on_progress=None,
    should_stop=None,
) -> Evaluation:
    """Hold out N stores, fit the others, forecast the held-out ones from their first K days."""
    new_stores = _positive_int(new_stores, "the number of new stores")
    known_days = _positive_int(known_days, "known days K")
    horizon = _positive_int(horizon, "horizon (days)")
    if new_stores >= cube.n_stores:
        raise ConfigError(
            f"the number of new stores must be below the number of stores "
            f"({cube.n_stores}) so that some remain to fit the hierarchy, got {new_stores}"
        )
    config = config or FitConfig(seed=seed)
    new_ids = choose_stores(cube, new_stores, seed)
    check_coldstart(cube, new_ids, known_days, horizon)  # before the (long) fit of the others
    others = cube.select_stores(np.setdiff1d(cube.store_ids, new_ids))
    global_fit = _fit_or_stop(
        fit(others, config, priors, on_progress=on_progress, should_stop=should_stop), "the fit of the hierarchy"
    )
    return coldstart(
        global_fit,
        cube,
        new_ids,
        known_days,
        horizon,
        seed=seed,
        config=local_config or config,
        n_samples=n_samples,
        baselines=baselines,
        should_stop=should_stop,
    )


# ----------------------------------------------------------------------------------------------
# Tables for reports and the dashboard (pure functions of an Evaluation)


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
