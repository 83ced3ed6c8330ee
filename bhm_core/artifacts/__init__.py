"""Fit artifacts: an npz of arrays + a JSON record per fit, sealed by checksums, never pickled.

A fit lives under ``ROOT/<key>`` (``arrays.npz`` and ``record.json``). The key hashes what
determines the result: the data fingerprint, priors, settings, feature spec and library versions.
store.py reads and writes them (checks on load: stale, edited, corrupt, or not what the model
builds; relabels; the store's `current` pointer); records.py builds, seals and checks a record;
folders.py lays them out so that concurrent writers and readers always see a whole copy;
layout.py names the arrays and derives what a fit of a given size must hold; scope.py says which
fits were made on a data set and labels new ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bhm_core import __version__, paths
from bhm_core.artifacts.scope import default_label, fits_of_data, made_on
from bhm_core.artifacts.store import FitStore
from bhm_core.data.features import FeatureSpec
from bhm_core.inference.state import FitResult
from bhm_core.model.config import FitConfig, Priors

__all__ = [
    "CONFIG_FIELDS_NOT_IN_KEY",
    "FORMAT_VERSION",
    "CachedFit",
    "FitStore",
    "content_key",
    "default_fit_root",
    "default_label",
    "fit_key",
    "fit_or_load",
    "fits_of_data",
    "library_versions",
    "made_on",
]

# 3: a link per fit to a version folder; the record seals itself and the arrays' contents.
FORMAT_VERSION = 3
# chunk_steps only sets how often progress is reported; it does not change the result.
CONFIG_FIELDS_NOT_IN_KEY = ("chunk_steps",)


def library_versions() -> dict:
    import jax
    import numpyro

    return {
        "bhm_core": __version__,
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "numpy": np.__version__,
        "format": FORMAT_VERSION,
    }


def _key_part(value):
    """A key part as plain JSON data. Settings that do not change a result (CONFIG_FIELDS_NOT_IN_KEY)
    are left out, so that reporting progress more often never misses a saved fit."""
    if isinstance(value, FitConfig):
        return {k: v for k, v in value.to_dict().items() if k not in CONFIG_FIELDS_NOT_IN_KEY}
    if isinstance(value, Priors):
        return value.to_dict()
    if isinstance(value, FeatureSpec):
        return asdict(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _key_part(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_key_part(v) for v in value]
    return value if isinstance(value, (int, float, str, type(None))) else str(value)


def content_key(kind: str | None, **parts) -> str:
    """20 hex digits naming everything that decides a result (a fit, a backtest, a cold start):
    the same parts give the same key in every process, so results can be shared and saved under it.

    kind None leaves the kind out of the hash: fit keys name saved folders and were hashed
    without one, and a changed hash would orphan every saved fit.
    """
    payload = {name: _key_part(value) for name, value in parts.items()}
    if kind is not None:
        payload["kind"] = kind
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def fit_key(
    data_fingerprint: str, config: FitConfig, priors: Priors, spec: FeatureSpec, extra: dict | None = None
) -> str:
    return content_key(
        None,
        data=data_fingerprint,
        config=config,
        priors=priors,
        spec=spec,
        versions=library_versions(),
        extra=extra or {},
    )


class CachedFit(NamedTuple):
    result: FitResult
    key: str
    from_cache: bool
    note: str | None  # why a saved copy was not used (stale or corrupt), if there was one


def default_fit_root() -> Path:
    """BHM_FIT_DIR, else ``fits/`` under the data root (BHM_DATA_ROOT moves it with the rest)."""
    return paths.fits_root()


def fit_or_load(
    store: FitStore,
    cube,
    config: FitConfig,
    priors: Priors,
    *,
    label: str = "",
    on_progress=None,
    should_stop=None,
    source=None,
    parent: str | None = None,
    relation: str | None = None,
    rows: dict | None = None,
) -> CachedFit:
    """The saved fit for exactly this data, priors, settings and versions, or a new one (saved with
    its lineage: `source` the data source it was loaded from and `rows` the rows read per file
    (Dataset.file_rows), `parent` the fit it came from)."""
    from bhm_core.inference.fit import fit

    key = fit_key(cube.fingerprint, config, priors, cube.spec)
    saved, problem = store.get(key)
    if saved is not None:
        return CachedFit(saved, key, True, None)
    result = fit(cube, config, priors, on_progress=on_progress, should_stop=should_stop)
    if not result.meta.get("cancelled"):
        from bhm_core.artifacts.lineage import lineage

        store.replace_with(
            result,
            key,
            label=label or cube.label,
            spec=cube.spec,
            parent=parent,
            lineage=lineage(source, rows=rows, relation=relation),
        )
    return CachedFit(result, key, False, problem)
