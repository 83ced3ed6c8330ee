"""Fitted coefficients as effects a reader can interpret: tidy frames (the Effects page draws them).

Coefficients live on the log scale and several groups are one-hot codes
that share the level with the weekday dummies (there is no intercept), so only contrasts are
meaningful: weekdays relative to Monday, holiday levels relative to "no holiday", store variants
relative to the average variant; promo, school holiday and promo2 are 0/1 features and stand alone.
exp(contrast . theta) is then the multiplicative effect on expected sales.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd

from bhm_core.data.cells import observed_cells
from bhm_core.data.cube import SalesCube
from bhm_core.data.features import STATE_HOLIDAY_LABELS
from bhm_core.forecast.sampling import draw_latents
from bhm_core.inference.state import FitResult
from bhm_core.model.hierarchy import store_coefficients
from bhm_core.model.lsq import fit_log_linear

GROUP_TITLES = {
    "weekday": "Weekday",
    "promo": "Promo",
    "state_holiday": "State holiday",
    "school_holiday": "School holiday",
    "promo2": "Promo2",
    "store_variant": "Store variant",
    "yearly": "Yearly",
    "promo_weekday": "Promo × weekday",
    "day_of_month": "Day of month",
    "month": "Month",
    "holiday_window": "Around holidays",
    "promo2_active": "Promo2 active",
    "trend": "Trend (per year)",
    "promo_window": "Around promo runs",
    "christmas": "Christmas and New Year",
    "easter": "Easter week",
    "recent_level": "Recent level",
}


def group_title(group: str) -> str:
    """A feature group's display title; groups added to the library later get a plain one."""
    return GROUP_TITLES.get(group) or group.replace("_", " ").capitalize()


ONE_HOT = ("store_variant", "month", "day_of_month")
KNOWN = ("weekday", "promo", "school_holiday", "promo2", "state_holiday", *ONE_HOT)
LSQ_PENALTY = 1e-2  # just enough ridge to make the collinear one-hot design solvable


@dataclass(frozen=True)
class Contrast:
    label: str
    group: str
    feature: int  # the feature the effect is about (its data decide whether it can be estimated)
    weights: tuple  # one per feature


def contrasts(feature_names, feature_groups, seen=None) -> list[Contrast]:
    """The effects to show. seen (one bool per feature: has observed days) picks the references:
    the first seen weekday and the average of the seen store variants, so that a reference is
    never a coefficient only the prior knows."""
    names, groups = list(feature_names), list(feature_groups)
    n = len(names)
    seen = np.ones(n, bool) if seen is None else np.asarray(seen, bool)

    def vec(plus, minus=(), minus_weight=1.0):
        w = np.zeros(n)
        w[plus] += 1.0
        for i in minus:
            w[i] -= minus_weight
        return tuple(w)

    out = []
    at = {g: [i for i, x in enumerate(groups) if x == g] for g in dict.fromkeys(groups)}
    weekdays = at.get("weekday", [])
    base = next((i for i in weekdays if seen[i]), weekdays[0] if weekdays else None)
    for i in weekdays:
        if i != base:
            label = f"{names[i].split('_')[-1]} vs {names[base].split('_')[-1]}"
            out.append(Contrast(label, "weekday", i, vec(i, [base])))
    for group, label in (("promo", "Promo day"), ("school_holiday", "School holiday"), ("promo2", "Promo2 store")):
        for i in at.get(group, []):
            out.append(Contrast(label, group, i, vec(i)))
    levels = at.get("state_holiday", [])
    for i in levels[1:]:
        level = names[i].rsplit("_", 1)[-1]
        out.append(
            Contrast(
                f"{STATE_HOLIDAY_LABELS.get(level, level).capitalize()} holiday",
                "state_holiday",
                i,
                vec(i, [levels[0]]),
            )
        )
    for group in ONE_HOT:  # levels that share the level with the weekdays: vs their average
        levels = at.get(group, [])
        reference = [i for i in levels if seen[i]] or levels
        if len(levels) > 1:
            for i in levels:
                out.append(Contrast(_label(names[i]), group, i, vec(i, reference, 1.0 / len(reference))))
    for group, indices in at.items():  # any other group: each feature per unit of its value
        if group not in KNOWN:
            out.extend(Contrast(_label(names[i]), group, i, vec(i)) for i in indices)
    return out


def _label(name: str) -> str:
    if name.startswith("variant_"):
        kind, assortment = name.removeprefix("variant_").split("/")
        return f"Type {kind}, assortment {assortment}"
    text = name.replace("promo_x_", "Promo × ").replace("_", " ")
    return text[:1].upper() + text[1:]


def feature_days(cube: SalesCube) -> np.ndarray:
    """Observed store-days on which each feature is non-zero."""
    cells = observed_cells(cube)
    used = (cells.value != 0).astype(np.float64)
    return np.bincount(cells.index.ravel(), weights=used.ravel(), minlength=cube.design.n_features)


def _matrix(items: list[Contrast]) -> np.ndarray:
    return np.array([c.weights for c in items], np.float64).reshape(len(items), -1)


def latent_samples(result: FitResult, n_samples: int = 400, seed: int = 0) -> dict:
    rows = np.arange(len(result.store_ids))
    return draw_latents(jax.random.PRNGKey(seed), result, n_samples, rows)


def global_effects(result: FitResult, items: list[Contrast], latents: dict) -> pd.DataFrame:
    """Long frame (effect, group, multiplier): posterior samples of exp(c . theta_mu)."""
    values = np.exp(latents["theta_mu"] @ _matrix(items).T)  # (n, E)
    n = values.shape[0]
    return pd.DataFrame(
        {
            "effect": np.repeat([c.label for c in items], n),
            "group": np.repeat([c.group for c in items], n),
            "multiplier": values.T.ravel(),
        }
    )


def store_effects(result: FitResult, items: list[Contrast], latents: dict) -> pd.DataFrame:
    """One row per store and effect: posterior mean and 90% interval of exp(c . theta_s)."""
    values = np.exp(np.einsum("nsf,ef->nse", store_coefficients(latents), _matrix(items)))
    mean = values.mean(0)
    lo, hi = np.percentile(values, [5, 95], axis=0)
    s, e = mean.shape
    return pd.DataFrame(
        {
            "store": np.repeat(result.store_ids, e),
            "effect": np.tile([c.label for c in items], s),
            "group": np.tile([c.group for c in items], s),
            "multiplier": mean.ravel(),
            "lo_90": lo.ravel(),
            "hi_90": hi.ravel(),
        }
    )


def shrinkage(result: FitResult, cube: SalesCube, items: list[Contrast], latents: dict) -> pd.DataFrame:
    """Per store and effect: least squares on log sales (store alone) vs the hierarchical estimate."""
    cells = observed_cells(cube)
    _, theta_lsq, _ = fit_log_linear(
        cells.store, cells.index, cells.value, cells.y, cube.n_stores, cube.design.n_features, store_penalty=LSQ_PENALTY
    )
    matrix = _matrix(items)
    lsq = np.exp(theta_lsq @ matrix.T)  # (S, E)
    hier = np.exp(np.einsum("nsf,ef->nse", store_coefficients(latents), matrix)).mean(0)
    days = cube.observed.sum(1)
    s, e = lsq.shape
    return pd.DataFrame(
        {
            "store": np.repeat(cube.store_ids, e),
            "effect": np.tile([c.label for c in items], s),
            "least_squares": lsq.ravel(),
            "hierarchical": hier.ravel(),
            "observed_days": np.repeat(days, e),
        }
    )


def summary_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Median and 90% interval per effect, in contrast order."""
    grouped = samples.groupby("effect", sort=False)["multiplier"]
    return pd.DataFrame(
        {"median": grouped.median(), "lo_90": grouped.quantile(0.05), "hi_90": grouped.quantile(0.95)}
    ).reset_index()
