"""A fit's effects against the true parameters of synthetic data (the demo's Dataset.truth).

The demo draws sales from the reference model, so every effect has a true value: its contrast
(effects.Contrast) applied to the true coefficients, the chain's (theta_mu) for the chain-wide
effect and each store's (theta_s) for the store's. Features the generator does not have (the
product's extra groups) have no effect in it: their true coefficient is 0.

That value is only the fit's to match where the data identify the contrast. The product's features
overlap (promo and the five promo x weekday terms are both on on every promo day; a store's promo2
flag never changes, like its level), so some contrasts have no single true value in the fit's
parameterisation: the truth puts all of the promo effect on `promo`, a fit may split it with the
interactions and be as right. A contrast is identified where it lies in the row space of the
design (no direction the data cannot see changes it): per store on its own observed days, and
chain-wide on all the stores' days together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.data.cells import observed_cells
from bhm_core.errors import DataError
from bhm_core.model.lsq import normal_equations


def true_coefficients(truth: dict, feature_names, store_ids) -> tuple[np.ndarray, np.ndarray]:
    """(chain (F,), stores (S, F)): the true coefficients on the fit's features and stores."""
    names = list(feature_names)
    where = {name: i for i, name in enumerate(truth["feature_names"])}
    columns = [where.get(name) for name in names]
    known = np.array([c is not None for c in columns])
    rows = {int(s): i for i, s in enumerate(truth["store_ids"])}
    missing = [int(s) for s in store_ids if int(s) not in rows]
    if missing:
        raise DataError(f"the truth has no store(s) {missing[:10]}: it belongs to other data")
    take = np.array([c if c is not None else 0 for c in columns])
    chain = np.where(known, np.asarray(truth["theta_mu"], np.float64)[take], 0.0)
    theta = np.asarray(truth["theta"], np.float64)[[rows[int(s)] for s in store_ids]]
    return chain, np.where(known[None, :], theta[:, take], 0.0)


def identified(weights: np.ndarray, xtx: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """(..., E) whether each contrast (E, F) lies in the row space of a design with normal
    equations xtx (..., F, F): its part along the directions the data cannot see is ~0."""
    values, vectors = np.linalg.eigh(xtx)
    blind = values < tol * np.maximum(values.max(-1, keepdims=True), 1e-12)  # (..., F)
    along = np.einsum("...fk,ef->...ek", vectors, weights) ** 2  # (..., E, F) weight on each direction
    unseen = (along * blind[..., None, :]).sum(-1)
    return unseen <= tol * np.maximum((weights**2).sum(-1), 1e-12)


def true_effects(items, truth: dict, feature_names, store_ids, cube=None) -> tuple[pd.Series, pd.DataFrame]:
    """(chain-wide true multiplier per effect id, one row per store and effect: store, id, true).
    With the fit's cube, only identified contrasts (see the module's note) keep a true value."""
    chain, stores = true_coefficients(truth, feature_names, store_ids)
    weights = np.array([c.weights for c in items], np.float64).reshape(len(items), -1)
    ids = [c.id for c in items]
    per_store = np.exp(stores @ weights.T)  # (S, E)
    chain_true = np.exp(weights @ chain)
    if cube is not None:
        xtx = _normal_equations(cube, store_ids)
        per_store = np.where(identified(weights, xtx), per_store, np.nan)
        chain_true = np.where(identified(weights, xtx.sum(0)), chain_true, np.nan)
    frame = pd.DataFrame(
        {
            "store": np.repeat(np.asarray(store_ids, np.int64), len(ids)),
            "id": np.tile(ids, len(store_ids)),
            "true": per_store.ravel(),
        }
    )
    return pd.Series(chain_true, index=ids, name="true").dropna(), frame.dropna(subset=["true"])


def _normal_equations(cube, store_ids) -> np.ndarray:
    cells = observed_cells(cube.select_stores(list(store_ids)))
    ones = np.ones(len(cells.y))
    xtx, _, _ = normal_equations(cells.store, cells.index, cells.value, ones, len(store_ids), cube.design.n_features)
    return xtx


def interval_hits(store_effects: pd.DataFrame, true_stores: pd.DataFrame) -> pd.DataFrame:
    """Per effect id: stores, how many of their 90 % intervals hold the true value, and the share.
    store_effects: effects.store_effects' frame (store, id, lo_90, hi_90)."""
    both = store_effects.merge(true_stores, on=["store", "id"])
    both["inside"] = (both["lo_90"] <= both["true"]) & (both["true"] <= both["hi_90"])
    out = both.groupby("id", sort=False)["inside"].agg(["size", "sum"]).rename(columns={"size": "stores"})
    out = out.rename(columns={"sum": "inside"})
    out["share"] = out["inside"] / out["stores"]
    return out


def chain_hits(summary: pd.DataFrame, true_chain: pd.Series) -> pd.DataFrame:
    """Per effect id: the chain-wide 90 % interval (effects.summary_table) and whether it holds the truth."""
    table = summary.set_index("id")[["effect", "median", "lo_90", "hi_90"]].join(true_chain, how="inner")
    table["inside"] = (table["lo_90"] <= table["true"]) & (table["true"] <= table["hi_90"])
    return table
