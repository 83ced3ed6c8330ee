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
from bhm_core.data.covariates import STATE_HOLIDAY_LABELS
from bhm_core.data.cube import SalesCube
from bhm_core.data.features import GROUPS
from bhm_core.forecast.sampling import draw_latents
from bhm_core.inference.state import FitResult
from bhm_core.model.hierarchy import store_coefficients
from bhm_core.model.lsq import fit_log_linear

WEEKDAY_NAMES = dict(
    zip(
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    )
)
LSQ_PENALTY = 1e-2  # just enough ridge to make the collinear one-hot design solvable


@dataclass(frozen=True)
class Contrast:
    label: str  # for people; never parsed back (a store type may hold any character)
    group: str
    feature: int  # the feature the effect is about (its data decide whether it can be estimated)
    weights: tuple  # one per feature
    id: str = ""  # the feature's name: unique, what frames and widgets key on


def contrasts(feature_names, feature_groups, seen=None) -> list[Contrast]:
    """The effects to show, group by group as the registry says to read them (FeatureGroup.contrast).
    seen (one bool per feature: has observed days) picks the references: the first seen weekday and
    the average of the seen levels, so that a reference is never a coefficient only the prior knows."""
    names = list(feature_names)
    n = len(names)
    seen = np.ones(n, bool) if seen is None else np.asarray(seen, bool)

    def vec(plus, minus=(), minus_weight=1.0):
        w = np.zeros(n)
        w[plus] += 1.0
        for i in minus:
            w[i] -= minus_weight
        return tuple(w)

    out = []
    at = {g: [i for i, x in enumerate(feature_groups) if x == g] for g in dict.fromkeys(feature_groups)}
    for group, levels in at.items():
        kind = GROUPS[group].contrast if group in GROUPS else "each"
        if kind == "reference":
            base = next((i for i in levels if seen[i]), levels[0])
            out += [
                Contrast(f"{_level(names[i])} vs {_level(names[base])}", group, i, vec(i, [base]), names[i])
                for i in levels
                if i != base
            ]
        elif kind == "first":
            out += [Contrast(_label(names[i]), group, i, vec(i, [levels[0]]), names[i]) for i in levels[1:]]
        elif kind == "average" and len(levels) > 1:
            reference = [i for i in levels if seen[i]] or levels
            out += [
                Contrast(_label(names[i]), group, i, vec(i, reference, 1.0 / len(reference)), names[i]) for i in levels
            ]
        elif kind in ("each", "average"):
            label = GROUPS[group].effect_label if group in GROUPS and len(levels) == 1 else ""
            out += [Contrast(label or _label(names[i]), group, i, vec(i), names[i]) for i in levels]
    return out


def _level(name: str) -> str:
    return name.split("_")[-1]


def _label(name: str) -> str:
    if name.startswith("state_holiday_"):
        level = name.rsplit("_", 1)[-1]
        return f"{STATE_HOLIDAY_LABELS.get(level, level).capitalize()} holiday"
    if name.startswith("variant_"):
        level = name.removeprefix("variant_")
        parts = level.split("/")
        return f"Type {parts[0]}, assortment {parts[1]}" if len(parts) == 2 else f"Type/assortment {level}"
    text = name.replace("promo_x_", "Promo × ").replace("_", " ")
    return text[:1].upper() + text[1:]


def feature_label(name: str) -> str:
    """A feature's readable name ("weekday_Sun" -> "Sunday", "variant_d/a" -> "Type d, assortment a")."""
    if name.startswith("weekday_"):
        return WEEKDAY_NAMES.get(_level(name), _level(name))
    return _label(name)


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
            "id": np.repeat([c.id for c in items], n),
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
            "id": np.tile([c.id for c in items], s),
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
            "id": np.tile([c.id for c in items], s),
            "effect": np.tile([c.label for c in items], s),
            "least_squares": lsq.ravel(),
            "hierarchical": hier.ravel(),
            "observed_days": np.repeat(days, e),
        }
    )


def summary_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Median and 90% interval per effect (id, effect, group), in contrast order."""
    keys = ["id", "effect", "group"] if "id" in samples else ["effect"]
    grouped = samples.groupby(keys, sort=False)["multiplier"]
    return pd.DataFrame(
        {"median": grouped.median(), "lo_90": grouped.quantile(0.05), "hi_90": grouped.quantile(0.95)}
    ).reset_index()
