"""Cold-start trial: new stores forecast from their first K observed days, the hierarchy frozen.

Hold out N seeded-random stores (or take given ones), fit the hierarchy on the others over all days,
then give each held-out store its first K observed days (counted from its first open day), fit its
local parameters with the global posterior frozen (``inference.coldstart.fit_new_stores``) and
forecast the ``horizon`` calendar days after its K-th known day. Stores start at different dates, so
windows are per store: stores are grouped by their K-th known day, and each group is forecast
(model and baselines) over its own window; the scores pool every store's window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bhm_core.data.cells import stores_per_feature
from bhm_core.data.cube import SalesCube
from bhm_core.errors import ConfigError
from bhm_core.evaluation.anomalies import anomaly_summary, store_medians
from bhm_core.evaluation.backtest import (
    DEFAULT_HORIZON,
    Evaluation,
    _fit_fields,
    _fit_or_stop,
    _ordered,
    _positive_int,
    choose_stores,
    rounded_seconds,
    score_summary,
)
from bhm_core.evaluation.baselines import COLDSTART_BASELINES, Baseline, timed_baselines
from bhm_core.evaluation.gbm import gbm_coldstart
from bhm_core.forecast.predict import forecast
from bhm_core.inference.coldstart import fit_new_stores
from bhm_core.inference.fit import fit
from bhm_core.inference.state import FitResult
from bhm_core.model.config import FitConfig, Priors


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
    gbm_peer: bool = False,
    on_progress=None,
    should_stop=None,
) -> Evaluation:
    """Forecast the given stores as new from their first K observed days, the hierarchy frozen.

    global_fit: a fit of the hierarchy on other stores of this cube (same features). The new
    stores' local parameters are fitted on their K known days (inference.coldstart.fit_new_stores with
    `config`), then each store is forecast over the `horizon` days after its K-th known day,
    together with the cold-start baselines trained on the same K days.
    gbm_peer: also run the LightGBM peer (``gbm``), trained on the hierarchy's stores' whole
    history in this cube plus the new stores' K known days (minutes on a thousand stores: off for
    the dashboard, on in the trial).
    """
    windows = check_coldstart(cube, new_ids, known_days, horizon)
    new_ids = np.array([w.store for w in windows], dtype=np.int64)
    overlap = np.intersect1d(new_ids, global_fit.store_ids)
    if overlap.size:
        raise ConfigError(
            f"store(s) {overlap[:10].tolist()} are in the fit of the hierarchy, so they "
            f"are not new to it; fit the hierarchy without them"
        )
    new = _as_new(cube, windows)
    known = _mask_known(new, windows)
    local_fit = _fit_or_stop(
        fit_new_stores(
            global_fit,
            known,
            config or global_fit.config,
            stores_seen=stores_per_feature(cube.select_stores(global_fit.store_ids)),
            on_progress=on_progress,
            should_stop=should_stop,
        ),
        "the new stores' fit",
    )
    frames, seconds, horizons = _forecast_windows(local_fit, new, known, windows, horizon, n_samples, seed, baselines)
    if gbm_peer:
        start = time.perf_counter()
        frames += gbm_coldstart(_peer_pool(cube, global_fit.store_ids, windows), horizons)
        seconds["gbm"] = time.perf_counter() - start
    forecasts = pd.concat(frames, ignore_index=True)

    summary = _summary(forecasts, windows, global_fit, local_fit, known_days, horizon)
    summary["baseline_seconds"] = rounded_seconds(seconds)
    summary["anomalies"] = anomaly_summary(forecasts, store_medians(known))
    return Evaluation(summary, forecasts, global_fit, local_fit)


def _forecast_windows(local_fit, new, known, windows, horizon, n_samples, seed, baselines):
    """(frames, seconds per baseline, window cubes): the model and the baselines over each group of
    stores sharing a K-th known day, every group over its own window."""
    frames, seconds, horizons = [], dict.fromkeys(baselines, 0.0), []
    for last_known in sorted({w.last_known for w in windows}):
        ids = np.array([w.store for w in windows if w.last_known == last_known], dtype=np.int64)
        first, end = last_known + np.timedelta64(1, "D"), last_known + np.timedelta64(horizon, "D")
        frames.append(forecast(local_fit, new, ids, first, end, n_samples=n_samples, seed=seed))
        train = known.select_stores(ids).select_days(None, last_known)
        horizons.append(new.select_stores(ids).select_days(first, end))
        frame, took = timed_baselines(train, horizons[-1], baselines)
        frames.append(frame)
        seconds = {name: seconds[name] + took[name] for name in seconds}
    return frames, seconds, horizons


def _peer_pool(cube: SalesCube, fit_ids, windows: list[_Window]) -> SalesCube:
    """The gbm peer's training cube: the hierarchy's stores and the new ones over every day, the new
    stores observed on their known days only, each new store's yearly profile from those days (the
    others' mean profile, as for the model: _as_new)."""
    pool = cube.select_stores(np.union1d(fit_ids, [w.store for w in windows]))
    last = np.full(pool.n_stores, pool.dates[-1], dtype="datetime64[D]")
    rows = pool.store_rows([w.store for w in windows])
    last[rows] = [w.last_known for w in windows]
    keep = pool.observed & (pool.dates[None, :] <= last[:, None])
    pool = replace(pool, observed=keep, sales=np.where(keep, pool.sales, 0).astype(pool.sales.dtype))
    is_new = np.zeros(pool.n_stores, bool)
    is_new[rows] = True
    origin = np.where(is_new, last, np.broadcast_to(np.asarray(pool.covariates.origin, "datetime64[D]"), last.shape))
    season = pool.covariates.season
    return pool.with_origin(origin, season_fallback=season[~is_new].mean(0) if (~is_new).any() else None)


def _as_new(cube: SalesCube, windows: list[_Window]) -> SalesCube:
    """The new stores' cube, each store's origin at its own last known day: with the origin years
    away, the store's level and trend would be confounded over its few known days
    (Covariates.origin). Their yearly profile (from K days: none) falls back to the hierarchy's
    stores' mean profile."""
    new_ids = np.array([w.store for w in windows], dtype=np.int64)
    by_id = {w.store: w.last_known for w in windows}
    new = cube.select_stores(new_ids)
    season = cube.covariates.season
    others = ~np.isin(cube.store_ids, new_ids)
    fallback = season[others].mean(0) if others.any() else None
    return new.with_origin(
        np.array([by_id[int(s)] for s in new.store_ids], dtype="datetime64[D]"), season_fallback=fallback
    )


def _summary(forecasts, windows, global_fit: FitResult, local_fit: FitResult, known_days: int, horizon: int) -> dict:
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
        "n_stores": len(windows),
        **scores,
        **fit_fields,
        "new_stores": [w.store for w in windows],
        "known_days": int(known_days),
        "n_fit_stores": len(global_fit.store_ids),
        "local_fit": local,
    }
    return _ordered(summary)


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
    gbm_peer: bool = True,
    on_progress=None,
    should_stop=None,
) -> Evaluation:
    """Hold out N stores, fit the others, forecast the held-out ones from their first K days (with
    the LightGBM peer unless gbm_peer is False: see coldstart)."""
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
        gbm_peer=gbm_peer,
        should_stop=should_stop,
    )
