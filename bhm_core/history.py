"""What a fits folder holds and how its fits relate: the chain of parents, what differs between
two fits (settings, data, scores, and the chain-wide effects that moved), and how their forecasts
of the same weeks moved.

The chain and the differences read records, and for effects the two fits' guides, never the data.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pandas as pd

from bhm_core.artifacts import FitStore
from bhm_core.data.cube import SalesCube
from bhm_core.errors import ArtifactError, DataError
from bhm_core.forecast.effects import contrasts, global_effects, summary_table
from bhm_core.forecast.sampling import draw_latents
from bhm_core.inference.state import FitResult

MAX_CHAIN = 1_000  # a longer chain of parents is a loop
EFFECT_SAMPLES = 400
MOVED = 0.05  # an effect moved when its median multiplier changed by more than 5 % ...
SETTING_SECTIONS = ("config", "priors", "spec")


def lineage_chain(store: FitStore, key: str) -> list[dict]:
    """The fit and its parents, newest first: fit, parent, created, label, relation (and
    `missing: true` for a parent no longer in the folder, where the chain ends)."""
    chain, seen = [], set()
    while key is not None and key not in seen and len(chain) < MAX_CHAIN:
        seen.add(key)
        try:
            record = store.record(key)
        except ArtifactError:
            chain.append({"fit": key, "parent": None, "created": None, "label": None, "missing": True})
            break
        chain.append(
            {
                "fit": key,
                "parent": record.get("parent"),
                "created": record.get("created"),
                "label": record.get("label", ""),
                "relation": (record.get("lineage") or {}).get("relation"),
            }
        )
        key = record.get("parent")
    return chain


def chain_effects(result: FitResult, n_samples: int = EFFECT_SAMPLES, seed: int = 0) -> pd.DataFrame:
    """The chain-wide effects (effect, median, lo_90, hi_90 of the multiplier) of a fit."""
    items = contrasts(result.feature_names, result.feature_groups)
    # the chain-wide sites do not depend on which stores are drawn: one store's row is enough
    latents = draw_latents(jax.random.PRNGKey(seed), result, n_samples, np.arange(1))
    return summary_table(global_effects(result, items, latents))


def diff(store: FitStore, a: str, b: str) -> dict:
    """What differs from fit `a` to fit `b`."""
    ra, rb = store.record(a), store.record(b)
    return {
        "a": a,
        "b": b,
        "settings": _setting_changes(ra, rb),
        "data": _data_changes(ra, rb),
        "scores": {"a": _scores(ra), "b": _scores(rb)},
        "effects_moved": effects_moved(store.load(a), store.load(b)),
    }


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out |= _flat(v, f"{prefix}{k}.")
        return out
    return {prefix[:-1]: value}


def _setting_changes(ra: dict, rb: dict) -> list[dict]:
    out = []
    for section in SETTING_SECTIONS:
        fa, fb = _flat(ra.get(section) or {}), _flat(rb.get(section) or {})
        for name in sorted(fa.keys() | fb.keys()):
            if fa.get(name) != fb.get(name):
                out.append({"setting": f"{section}.{name}", "a": fa.get(name), "b": fb.get(name)})
    return out


def _data_changes(ra: dict, rb: dict) -> dict:
    ma, mb = ra.get("meta") or {}, rb.get("meta") or {}
    sa, sb = set(ra.get("store_ids") or ()), set(rb.get("store_ids") or ())
    files = {
        side: {Path(f["path"]).name: f["sha256"] for f in (record.get("lineage") or {}).get("inputs", [])}
        for side, record in (("a", ra), ("b", rb))
    }
    return {
        "same_data": ra.get("data_fingerprint") == rb.get("data_fingerprint"),
        "days": {"a": [ma.get("first_date"), ma.get("last_date")], "b": [mb.get("first_date"), mb.get("last_date")]},
        "stores_added": sorted(sb - sa),
        "stores_removed": sorted(sa - sb),
        "files_changed": sorted(
            p for p in files["a"].keys() | files["b"].keys() if files["a"].get(p) != files["b"].get(p)
        ),
    }


def _scores(record: dict) -> dict:
    meta, gate = record.get("meta") or {}, (record.get("lineage") or {}).get("gate") or {}
    out = {"final_loss": meta.get("final_loss"), "steps": meta.get("steps"), "seconds": meta.get("seconds")}
    if gate.get("challenger"):
        out["holdout"] = gate["challenger"]
    return out


def effects_moved(a: FitResult, b: FitResult, threshold: float = MOVED) -> list[dict]:
    """Chain-wide effects both fits estimate whose median multiplier moved by more than
    `threshold` (relative) and whose 90 % intervals do not overlap, largest move first."""
    ea, eb = chain_effects(a).set_index("effect"), chain_effects(b).set_index("effect")
    out = []
    for effect in ea.index.intersection(eb.index):
        x, y = ea.loc[effect], eb.loc[effect]
        change = y["median"] / x["median"] - 1
        apart = y["lo_90"] > x["hi_90"] or y["hi_90"] < x["lo_90"]
        if abs(change) > threshold and apart:
            out.append({"effect": effect, "a": float(x["median"]), "b": float(y["median"]), "change": float(change)})
    return sorted(out, key=lambda row: -abs(row["change"]))


def movement(
    fits: dict[str, FitResult], cube: SalesCube, store: int, first, last, *, n_samples: int = 300, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How the forecast of [first, last] moved between fits: (one store's, the daily total's over
    the stores every fit covers), each a long frame with a `fit` column (the dict's names) and
    date, point, median, lo_50, hi_50, lo_90, hi_90. Every fit forecasts from the cube's covariates
    as it computed them (the features' origin at its own last day), so a fit made on fewer days
    is shown as it would forecast, not refitted."""
    from bhm_core.forecast.predict import forecast, forecast_total

    common = cube.store_ids
    for result in fits.values():
        common = np.intersect1d(common, result.store_ids)
        if tuple(result.feature_names) != tuple(cube.feature_names):
            raise DataError("the fits encode different features: their forecasts cannot be drawn on the same data")
    if store not in common:
        raise DataError(f"store {store} is not in every fit compared")
    stores, totals = [], []
    for name, result in fits.items():
        fitted_to = min(np.datetime64(result.meta.get("last_date", str(cube.dates[-1])), "D"), cube.dates[-1])
        sub = cube.select_stores(common).with_origin(fitted_to)
        one = forecast(result, sub, [store], first, last, n_samples=n_samples, seed=seed)
        stores.append(one.assign(fit=name))
        total = forecast_total(result, sub, common, first, last, n_samples=n_samples, seed=seed)
        totals.append(total.assign(fit=name))
    return pd.concat(stores, ignore_index=True), pd.concat(totals, ignore_index=True)
