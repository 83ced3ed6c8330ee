"""Fit artifacts: npz arrays + a JSON record per fit, written atomically, never pickled.

A fit lives in ``ROOT/<key>/`` with ``arrays.npz`` and ``record.json``. The key hashes what
determines the result: the data fingerprint, priors, settings, feature spec and library versions.
Both files are written into a temporary folder that is renamed into place in one step, so a reader
sees a whole fit or none, and two processes saving the same fit cannot interleave. The record holds
the npz's SHA-256: a truncated or swapped file is detected, reported, and never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd

from bhm_core import __version__
from bhm_core.data.features import FeatureSpec
from bhm_core.errors import ArtifactError, ConfigError
from bhm_core.inference.optim import init_state
from bhm_core.inference.state import FitResult, FitState
from bhm_core.model.config import FitConfig, Priors
from bhm_core.model.guide import SiteParams, Whitening

FORMAT_VERSION = 2
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


def _flatten(result: FitResult) -> dict:
    """Every array of a fit under a readable name: the guide entries by site and field, the
    optimizer state by its path in the optimizer's own tree (whatever the optimizer)."""
    arrays = {"losses": result.losses, "store_ids": result.store_ids, "step": np.asarray(result.state.step)}
    for name, entry in result.params.items():
        for part, array in entry._asdict().items():
            arrays[f"params/{name}/{part}"] = array
    for path, leaf in jax.tree_util.tree_flatten_with_path(result.state.opt_state)[0]:
        arrays[f"opt/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    return arrays


def _optimizer_state(arrays: dict, config: FitConfig, params: dict, trained: tuple):
    """The optimizer state saved with a fit, in the tree the optimizer builds for these sites."""
    template = init_state(config.optimizer, {name: params[name] for name in trained})
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = [arrays[f"opt/{jax.tree_util.keystr(path)}"] for path, _ in paths]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _unflatten(arrays, prefix: str) -> dict:
    """Entries by their fields: (loc, log_scale) for a guide site, (center, chol) for a whitening."""
    names = sorted({k.split("/")[1] for k in arrays if k.startswith(prefix + "/")})
    out = {}
    for n in names:
        kind = Whitening if f"{prefix}/{n}/chol" in arrays else SiteParams
        out[n] = kind(*(arrays[f"{prefix}/{n}/{part}"] for part in kind._fields))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class FitStore:
    """A folder of saved fits: save, load, list, delete; safe for concurrent writers."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise ArtifactError(f"not a fit key: {key!r}")
        return self.root / key

    def save(
        self,
        result: FitResult,
        key: str,
        *,
        label: str = "",
        spec: FeatureSpec = FeatureSpec(),
        parent: str | None = None,
    ) -> str:
        """Write atomically; if the same key is already saved, keep the existing copy."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(key)
        if final.is_dir():
            return key
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            np.savez(tmp / "arrays.npz", **_flatten(result))
            record = {
                "key": key,
                "label": label,
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                "data_fingerprint": result.data_fingerprint,
                "config": result.config.to_dict(),
                "priors": result.priors.to_dict(),
                "spec": asdict(spec),
                "feature_names": list(result.feature_names),
                "feature_groups": list(result.feature_groups),
                "trained": list(result.trained),
                "n_stores": len(result.store_ids),
                "store_ids": [int(i) for i in result.store_ids],
                "versions": library_versions(),
                "parent": parent,
                "meta": {k: _jsonable(v) for k, v in result.meta.items()},
                "arrays_sha256": _sha256(tmp / "arrays.npz"),
            }
            (tmp / "record.json").write_text(json.dumps(record, indent=1))
            os.replace(tmp, final)
        except OSError:
            if final.is_dir():  # another process saved the same fit first: theirs stands
                return key
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return key

    def record(self, key: str) -> dict:
        path = self.path(key) / "record.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ArtifactError(f"no saved fit {key}") from None
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"saved fit {key} has an unreadable record ({exc}); delete it and refit") from None

    def load(self, key: str) -> FitResult:
        """Load a fit; raises ArtifactError if it is corrupt or made by other library versions."""
        record = self.record(key)
        if record.get("versions") != library_versions():
            raise ArtifactError(
                f"saved fit {key} was made with {record.get('versions')}, not the "
                f"running {library_versions()}; it will be refitted"
            )
        arrays_path = self.path(key) / "arrays.npz"
        if not arrays_path.is_file() or _sha256(arrays_path) != record.get("arrays_sha256"):
            raise ArtifactError(
                f"saved fit {key} is corrupt (its arrays do not match the record's checksum); it will be refitted"
            )
        try:
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            params = _unflatten(arrays, "params")
            config = FitConfig.from_dict(record["config"])
            trained = tuple(record["trained"])
            state = FitState(params, _optimizer_state(arrays, config, params, trained), arrays["step"])
            return FitResult(
                state,
                trained,
                arrays["losses"],
                arrays["store_ids"],
                tuple(record["feature_names"]),
                tuple(record["feature_groups"]),
                Priors.from_dict(record["priors"]),
                config,
                record["data_fingerprint"],
                record["meta"],
            )
        except (KeyError, ValueError, OSError, ConfigError) as exc:
            raise ArtifactError(f"saved fit {key} cannot be read ({exc}); it will be refitted") from None

    def get(self, key: str) -> tuple[FitResult | None, str | None]:
        """(fit, None) if saved and sound; (None, reason) if absent, stale or corrupt."""
        if not self.path(key).is_dir():
            return None, None
        try:
            return self.load(key), None
        except ArtifactError as exc:
            return None, str(exc)

    def delete(self, key: str) -> None:
        target = self.path(key)
        if target.is_dir():
            trash = self.root / f".del-{uuid.uuid4().hex}"
            os.replace(target, trash)  # vanish in one step, then clean up
            shutil.rmtree(trash, ignore_errors=True)

    def replace_with(self, result: FitResult, key: str, **kwargs) -> str:
        """Save over a stale or corrupt copy."""
        self.delete(key)
        return self.save(result, key, **kwargs)

    def store_ids(self, key: str) -> np.ndarray:
        """A fit's store ids without loading its arrays: from the record, or (records written
        before it held them) from the one npz member, which np.load reads on its own."""
        record = self.record(key)
        if "store_ids" in record:
            return np.asarray(record["store_ids"], dtype=np.int64)
        try:
            with np.load(self.path(key) / "arrays.npz", allow_pickle=False) as npz:
                return np.asarray(npz["store_ids"], dtype=np.int64)
        except (KeyError, ValueError, OSError) as exc:
            raise ArtifactError(f"saved fit {key} has no readable store ids ({exc}); it will be refitted") from None

    LIST_COLUMNS = (
        "key",
        "created",
        "label",
        "n_stores",
        "steps",
        "final_loss",
        "seconds",
        "learning_rate",
        "optimizer",
        "schedule",
        "seed",
        "batch_size",
        "priors",
        "stale",
        "data_fingerprint",
        "arrays_sha256",
        "parent",
    )

    def list(self) -> pd.DataFrame:
        """One row per readable record, newest first; nothing but the records is read. `stale`:
        made with other library versions (loading it would refit); `priors` is the record's dict."""
        rows = []
        versions = library_versions()
        for folder in sorted(self.root.glob("[0-9a-f]*")):
            try:
                rec = self.record(folder.name)
            except ArtifactError:
                continue
            meta, config = rec.get("meta") or {}, rec.get("config") or {}
            rows.append(
                {
                    "key": rec.get("key", folder.name),
                    "created": rec.get("created"),
                    "label": rec.get("label", ""),
                    "n_stores": rec.get("n_stores"),
                    "steps": meta.get("steps"),
                    "final_loss": meta.get("final_loss"),
                    "seconds": meta.get("seconds"),
                    "learning_rate": config.get("learning_rate"),
                    "optimizer": config.get("optimizer"),
                    "schedule": config.get("schedule"),
                    "seed": config.get("seed"),
                    "batch_size": config.get("batch_size"),
                    "priors": rec.get("priors") or {},
                    "stale": rec.get("versions") != versions,
                    "data_fingerprint": rec.get("data_fingerprint"),
                    "arrays_sha256": rec.get("arrays_sha256", ""),
                    "parent": rec.get("parent"),
                }
            )
        frame = pd.DataFrame(rows, columns=list(self.LIST_COLUMNS))
        return frame.sort_values("created", ascending=False, ignore_index=True)


class CachedFit(NamedTuple):
    result: FitResult
    key: str
    from_cache: bool
    note: str | None  # why a saved copy was not used (stale or corrupt), if there was one


def default_fit_root() -> Path:
    return Path(os.environ.get("BHM_FIT_DIR") or Path(__file__).resolve().parent.parent / "data" / "fits")


def fit_or_load(
    store: FitStore, cube, config: FitConfig, priors: Priors, *, label: str = "", on_progress=None, should_stop=None
) -> CachedFit:
    """The saved fit for exactly this data, priors, settings and versions, or a new one (saved)."""
    from bhm_core.inference.fit import fit

    key = fit_key(cube.fingerprint, config, priors, cube.spec)
    saved, problem = store.get(key)
    if saved is not None:
        return CachedFit(saved, key, True, None)
    result = fit(cube, config, priors, on_progress=on_progress, should_stop=should_stop)
    if not result.meta.get("cancelled"):
        store.replace_with(result, key, label=label or cube.label, spec=cube.spec)
    return CachedFit(result, key, False, problem)
