"""Which saved fits were made on a data set, and the readable labels fits get.

One fit store serves everyone who uses a server, so whoever lists, compares, downloads or deletes
fits does it on the fits of the data they have loaded only. "Made on these data" is decided by
content, never by a name or a path: a fit records the fingerprint of the cube it saw (its stores
of the data, with its features), and the data in use give the same fingerprint for those stores
exactly when they hold the same sales, days and covariates. The same file uploaded twice lands at
two paths and a folder can change under one path, so the record's `lineage.source` is no proof.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from bhm_core.artifacts.records import MAX_LABEL
from bhm_core.artifacts.store import FitStore
from bhm_core.data.features import FeatureSpec
from bhm_core.errors import BhmError
from bhm_core.model.config import FitConfig, Priors

YES, OTHER_DATA, UNREADABLE = "yes", "other data", "unreadable"
# Settings every fit has its own value of, shown apart (steps) or not worth a word (chunk size).
LABEL_SKIPS = ("steps", "chunk_steps")


def fit_stores(store: FitStore, key: str, listed_ids=None) -> np.ndarray:
    """A fit's store ids: those its list row carries, else read from the fit (older records)."""
    if isinstance(listed_ids, (list, tuple, np.ndarray)):
        return np.asarray(listed_ids, dtype=np.int64)
    return store.store_ids(key)


def subset_fingerprint(cube, store_ids, spec: dict | None) -> str:
    """The fingerprint a fit on these stores of `cube` (with the record's features) would have.
    Raises BhmError when the cube lacks one of the stores or the spec is not one of ours."""
    sub = cube.select_stores(store_ids)
    if spec and spec != asdict(cube.spec):
        try:
            sub = sub.with_spec(FeatureSpec(**spec))
        except TypeError as exc:  # a field this version does not know
            raise BhmError(f"unknown feature settings ({exc})") from None
    return sub.fingerprint


def data_match(store: FitStore, row, cube, memo: dict | None = None) -> str:
    """YES when the listed fit (a row of FitStore.list) was made on `cube`'s data, OTHER_DATA when
    not, UNREADABLE when its store ids cannot be read. memo: fingerprints by (stores, spec), so
    that fits of the same stores hash that subset once."""
    try:
        ids = fit_stores(store, row["key"], row.get("store_ids"))
    except BhmError:
        return UNREADABLE
    spec = row.get("spec") if isinstance(row.get("spec"), dict) else None
    memo = {} if memo is None else memo
    slot = (tuple(int(i) for i in ids), repr(sorted((spec or {}).items())))
    if slot not in memo:
        try:
            memo[slot] = subset_fingerprint(cube, ids, spec)
        except BhmError:  # stores these data do not have
            memo[slot] = None
    return YES if memo[slot] is not None and memo[slot] == row.get("data_fingerprint") else OTHER_DATA


def fits_of_data(store: FitStore, cube, *, match=None) -> pd.DataFrame:
    """FitStore.list() restricted to the fits made on `cube`'s data (newest first, same columns).
    match(row) -> YES / OTHER_DATA / UNREADABLE replaces data_match (a caller's cached version)."""
    listed = store.list()
    memo: dict = {}
    match = match or (lambda row: data_match(store, row, cube, memo))
    keep = [match(row) == YES for row in listed.to_dict("records")]
    return listed[np.asarray(keep, dtype=bool)].reset_index(drop=True) if len(listed) else listed


def made_on(store: FitStore, key: str, cube) -> bool:
    """Whether saved fit `key` was made on `cube`'s data (False when there is no such fit)."""
    try:
        record = store.record(key)
    except BhmError:
        return False
    row = {"key": key, **{k: record.get(k) for k in ("store_ids", "spec", "data_fingerprint")}}
    return data_match(store, row, cube) == YES


def store_ranges(store_ids, most: int = 4) -> str:
    """'20 stores (1–20)', '3 stores (4, 9, 11)', '40 stores (1–10, 12, 15–30, …)'."""
    ids = sorted({int(i) for i in store_ids})
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = [str(a) if a == b else f"{a}, {b}" if b == a + 1 else f"{a}–{b}" for a, b in runs[:most]]
    shown = ", ".join(parts) + (", …" if len(runs) > most else "")
    return f"{len(ids)} store{'s' if len(ids) != 1 else ''} ({shown})"


def changed_settings(config: FitConfig, priors: Priors, spec: FeatureSpec | None = None) -> list[str]:
    """What differs from the defaults: settings as name=value, prior groups and features by name."""
    default = FitConfig().to_dict()
    changed = [f"{k}={v}" for k, v in config.to_dict().items() if k not in LABEL_SKIPS and v != default.get(k)]
    reference = Priors().to_dict()
    groups = [name for name, value in priors.to_dict().items() if reference.get(name) != value]
    if groups:
        changed.append("priors of " + ", ".join(groups))
    if spec is not None:
        base = asdict(FeatureSpec())
        features = [f"{k}={v}" for k, v in asdict(spec).items() if base.get(k) != v]
        if features:
            changed.append("features " + ", ".join(features))
    return changed


def default_label(data_label: str, store_ids, config: FitConfig, priors: Priors, spec=None) -> str:
    """The data, the stores, the steps, and what changed from the default settings, on one line."""
    changed = changed_settings(config, priors, spec)
    parts = [data_label, store_ranges(store_ids), f"{config.steps:,} steps"]
    parts.append("changed: " + "; ".join(changed) if changed else "default settings")
    label = " · ".join(p for p in parts if p)
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
