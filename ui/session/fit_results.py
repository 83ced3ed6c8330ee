"""Cached results derived from a fit: forecasts over a window, one store-day's draws, effect
tables, the prior predictive check. Keys are the fit key (which names the fit's content) and the
request, so results are shared by all sessions; the fit and cube ride along unhashed (_result,
_cube). The library is imported on first use: these pages come after the warm-up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.data.cube import SalesCube


# The library's forecast functions, imported on first use (tests count calls through these names).
def forecast(*args, **kwargs):
    from bhm_core.forecast.predict import forecast as run

    return run(*args, **kwargs)


def forecast_total(*args, **kwargs):
    from bhm_core.forecast.predict import forecast_total as run

    return run(*args, **kwargs)


def store_day_samples(*args, **kwargs):
    from bhm_core.forecast.predict import store_day_samples as run

    return run(*args, **kwargs)


@st.cache_data(max_entries=64, show_spinner="Sampling the forecast…")
def store_forecast(
    fit_key: str,
    stores: tuple,
    first,
    last,
    plan_key: str,
    n_samples: int,
    _result,
    _cube: SalesCube,
    _plan=None,
    chunk_stores: int = 8,
) -> pd.DataFrame:
    """Per-store forecast over [first, last] with promo/holiday flags, expected closures (days after
    the data on a store's usual closing weekday: open False, forecast 0) and where each day's
    covariates came from (source). Days after the data follow `_plan` (a Scenario; plan_key names
    it). chunk_stores fixed: one compiled program whatever the number of stores shown."""
    from bhm_core.forecast.export import sources
    from bhm_core.forecast.sampling import forecast_dates
    from bhm_core.forecast.windows import window_parts

    parts = []
    for a, b, scenario, seed in window_parts(first, last, _cube.dates[-1], _plan or False):
        part = forecast(
            _result,
            _cube,
            list(stores),
            a,
            b,
            n_samples=n_samples,
            seed=seed,
            scenario=scenario,
            chunk_stores=chunk_stores,
        )
        part["source"] = sources(_cube, list(stores), forecast_dates(a, b), scenario).ravel()
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sort_values(["store", "date"], ignore_index=True)


@st.cache_data(max_entries=32, show_spinner="Summing the forecast over the stores…")
def total_forecast(
    fit_key: str, first, last, plan_key: str, n_samples: int, _result, _cube, _plan=None
) -> pd.DataFrame:
    """Daily sum over the fit's stores; the actual total only inside the data (NaN after)."""
    from bhm_core.forecast.windows import window_parts

    parts = [
        forecast_total(_result, _cube, _result.store_ids, a, b, n_samples=n_samples, seed=seed, scenario=scenario)
        for a, b, scenario, seed in window_parts(first, last, _cube.dates[-1], _plan or False)
    ]
    total = pd.concat(parts, ignore_index=True)
    total.loc[total["date"] > pd.Timestamp(_cube.dates[-1]), "y"] = np.nan
    return total


@st.cache_data(max_entries=64, show_spinner=False)
def day_samples(
    fit_key: str, store: int, date, plan_key: str, n_samples: int, _result, _cube, _plan=None
) -> np.ndarray:
    from bhm_core.forecast.windows import day_scenario

    scenario = day_scenario(date, _cube.dates[-1], _plan or False)
    return store_day_samples(_result, _cube, store, np.datetime64(date, "D"), n_samples=n_samples, scenario=scenario)


@st.cache_data(max_entries=32, show_spinner="Drawing the plan and the what-if on the same draws…")
def uplift(fit_key: str, stores: tuple, first, last, keys: tuple, n_samples: int, _result, _cube, _plan, _scenario):
    """whatif.uplift of a promo plan against the plan of record (keys: the two scenarios' keys)."""
    from bhm_core.forecast import whatif

    return whatif.uplift(_result, _cube, list(stores), first, last, _plan, _scenario, n_samples=n_samples)


@st.cache_data(max_entries=16, show_spinner="Drawing both fits' forecasts…")
def fits_compared(
    keys: tuple, stores: tuple, first, last, plan_key: str, n_samples: int, _before, _after, _cube, _plan
):
    """whatif.compare_fits of two fits (keys: theirs) on the same stores, days and plan."""
    from bhm_core.forecast import whatif

    return whatif.compare_fits(_before, _after, _cube, list(stores), first, last, _plan, n_samples=n_samples)


@st.cache_data(max_entries=16, show_spinner="Summarising the effects…")
def effect_tables(fit_key: str, seen: tuple, _result, _cube: SalesCube | None = None) -> dict:
    """Global effect samples and per-store effects of a fit; with the fit's cube also shrinkage
    and observed days per effect. seen: per feature, whether the data have it (see
    effects.contrasts), so that two fits compared use the same references."""
    from bhm_core.forecast import effects

    items = effects.contrasts(_result.feature_names, _result.feature_groups, seen)
    latents = effects.latent_samples(_result)
    out = {
        "global": effects.global_effects(_result, items, latents),
        "stores": effects.store_effects(_result, items, latents),
    }
    if _cube is not None:
        out["shrinkage"] = effects.shrinkage(_result, _cube, items, latents)
        days = effects.feature_days(_cube)
        out["days"] = pd.Series({c.id: int(days[c.feature]) for c in items})
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def truth_tables(fit_key: str, seen: tuple, source_key: str, _result, _truth: dict, _cube) -> dict:
    """The fit's effects against the true parameters of synthetic data: true chain-wide multipliers
    (by effect id), each store's, the share of stores whose 90 % interval holds the truth, and
    whether each chain-wide interval does; only effects the fit's data identify (forecast.truth)."""
    from bhm_core.forecast import effects, truth

    items = effects.contrasts(_result.feature_names, _result.feature_groups, seen)
    chain, stores = truth.true_effects(items, _truth, _result.feature_names, _result.store_ids, _cube)
    tables = effect_tables(fit_key, seen, _result)
    return {
        "chain": chain,
        "stores": stores,
        "hits": truth.interval_hits(tables["stores"], stores),
        "chain_hits": truth.chain_hits(effects.summary_table(tables["global"]), chain),
    }


@st.cache_data(max_entries=8, show_spinner=False)
def seen_features(fingerprint: str, _cube: SalesCube) -> tuple:
    from bhm_core.forecast import effects

    return tuple(bool(d > 0) for d in effects.feature_days(_cube))


@st.cache_data(max_entries=32, show_spinner=False)
def prior_predictive(fingerprint: str, priors_key: str, _cube: SalesCube, _priors):
    from bhm_core.forecast import prior_check

    return prior_check.prior_predictive(_cube, _priors), prior_check.observed_log10(_cube)
