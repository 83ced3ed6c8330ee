"""FitStore: save, load, list and delete fits in a folder; safe for concurrent writers and readers.

A fit is an npz of arrays and a JSON record (folders.py has the layout). The record holds the
SHA-256 of the arrays (names, dtypes, shapes, bytes) and its own SHA-256 over every other field, so
an edited record, a truncated or swapped npz, or arrays of the wrong shape (checked against what the
model builds for the fit) are refused with a message saying what was wrong, and never half-loaded.
Nothing is pickled: arrays are read with np.load(allow_pickle=False).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from bhm_core.artifacts import folders, layout
from bhm_core.artifacts.records import build_record, check_label, check_record, parse_record, running_versions, seal
from bhm_core.data.features import FeatureSpec
from bhm_core.errors import ArtifactError, ConfigError
from bhm_core.inference.state import FitResult, FitState
from bhm_core.model.config import FitConfig, Priors

# A reader retries when a writer replaced the fit between finding its folder and opening its files.
READ_ATTEMPTS = 5


def _read_arrays(key: str, handle) -> dict:
    try:
        with np.load(handle, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(
            f"saved fit {key} is corrupt (its arrays cannot be read: {exc}); it will be refitted"
        ) from None


def check_arrays(key: str, record: dict, arrays: dict) -> None:
    """The arrays are the record's and have the names, shapes and dtypes the model builds."""
    if layout.arrays_digest(arrays) != record.get("arrays_sha256"):
        raise ArtifactError(
            f"saved fit {key} is corrupt (its arrays do not match the record's checksum); it will be refitted"
        )
    try:
        config = FitConfig.from_dict(record["config"])
        store_ids, names = record["store_ids"], record["feature_names"]
        expected, optional = layout.expected_arrays(
            len(store_ids), len(names), config.optimizer, tuple(record["trained"])
        )
        layout.check_arrays(arrays, expected, optional)
        if arrays["store_ids"].tolist() != store_ids:
            raise ArtifactError("array store_ids differs from the record's store ids")
    except (KeyError, TypeError, ConfigError, ArtifactError) as exc:
        raise ArtifactError(f"saved fit {key} is corrupt: {exc}; it will be refitted") from None


def result_from(key: str, record: dict, arrays: dict) -> FitResult:
    try:
        params = layout.unflatten_params(arrays)
        config = FitConfig.from_dict(record["config"])
        trained = tuple(record["trained"])
        opt_state = layout.optimizer_state(arrays, config.optimizer, params, trained)
        return FitResult(
            FitState(params, opt_state, arrays["step"]),
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
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ArtifactError(f"saved fit {key} cannot be read ({exc}); it will be refitted") from None


class FitStore:
    """A folder of saved fits: save, load, list, delete; safe for concurrent writers and readers.
    Opening one removes what crashed saves left behind (folders.sweep)."""

    def __init__(self, root):
        self.root = Path(root)
        folders.sweep(self.root)

    def path(self, key: str) -> Path:
        """ROOT/<key>: the fit's folder (a link to its current copy)."""
        return self.root / folders.check_key(key)

    def save(
        self,
        result: FitResult,
        key: str,
        *,
        label: str = "",
        spec: FeatureSpec = FeatureSpec(),
        parent=None,
        lineage: dict | None = None,
    ) -> str:
        """Write atomically; if the same key is already saved, keep the existing copy."""
        if self._folder(key) is not None:
            return key
        with self._writing(key):
            version = self._write(result, key, label, spec, parent, lineage)
            if not folders.link_new(self.root, key, version):  # another writer was first: theirs stands
                folders.remove_tree(version)
        return key

    def replace_with(
        self,
        result: FitResult,
        key: str,
        *,
        label: str = "",
        spec: FeatureSpec = FeatureSpec(),
        parent=None,
        lineage: dict | None = None,
    ) -> str:
        """Save over a stale or corrupt copy: the new copy is renamed in over the old one, so a
        reader finds the old or the new copy at every moment, never none."""
        folders.check_key(key)
        with self._writing(key):
            version = self._write(result, key, label, spec, parent, lineage)
            previous = folders.link_replace(self.root, key, version)
            if previous is not None:
                folders.remove_tree(previous)
        return key

    def _write(self, result: FitResult, key: str, label: str, spec: FeatureSpec, parent, lineage) -> Path:
        arrays = layout.flatten(result)
        record = build_record(result, key, arrays, label=label, spec=spec, parent=parent, lineage=lineage)

        def write(folder: Path) -> None:
            with open(folder / "arrays.npz", "wb") as handle:
                np.savez(handle, **arrays)
            (folder / "record.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

        return folders.write_version(self.root, key, write)

    def relabel(self, key: str, label: str) -> str:
        """Give a saved fit another label: a new sealed version (the arrays copied byte for byte,
        the record resealed) swapped in over the old one, so readers see one or the other. A record
        that does not match its own checksum is refused rather than resealed. Returns the label."""
        label = check_label(label)

        def copy(folder: Path) -> Path:
            with contextlib.ExitStack() as files:  # both open at once: one copy, even if replaced after
                record_file = files.enter_context(folders.open_file(folder, "record.json"))
                arrays_file = files.enter_context(folders.open_file(folder, "arrays.npz"))
                record = parse_record(key, record_file.read())
                if record.get(layout.RECORD_HASH) != layout.record_digest(record):
                    raise ArtifactError(f"saved fit {key}: record edited (its checksum does not match its fields)")
                record = seal({**record, "label": label})

                def write(target: Path) -> None:
                    with open(target / "arrays.npz", "wb") as out:
                        shutil.copyfileobj(arrays_file, out, 1 << 20)
                    (target / "record.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

                return folders.write_version(self.root, key, write)

        with self._writing(key):
            version = self._read(key, copy)
            if self._folder(key) is None:  # deleted meanwhile: a new label must not bring it back
                folders.remove_tree(version)
                raise ArtifactError(f"no saved fit {key}")
            previous = folders.link_replace(self.root, key, version)
            if previous is not None:
                folders.remove_tree(previous)
        return label

    def current_key(self) -> str | None:
        """The key the store's `current` pointer names (None: none, or not a saved fit's key)."""
        return folders.read_current(self.root)

    def set_current(self, key: str | None) -> None:
        """Point `current` at a saved fit (None removes the pointer); replaced in one rename."""
        if key is not None and self._folder(key) is None:
            raise ArtifactError(f"no saved fit {key} in {self.root} to make current")
        with self._writing(key or "current"):
            folders.write_current(self.root, key)

    @contextlib.contextmanager
    def _writing(self, key: str):
        try:
            yield
        except OSError as exc:  # a full disk, a read-only folder: the user's to fix, said in one line
            raise ArtifactError(f"cannot save fit {key} in {self.root}: {exc}") from None

    def _folder(self, key: str) -> Path | None:
        return folders.current_version(self.root, folders.check_key(key))

    def _read(self, key: str, reader):
        """reader(the fit's folder); again if a writer replaced the copy before its files were open."""
        for _ in range(READ_ATTEMPTS):
            folder = self._folder(key)
            if folder is None:
                raise ArtifactError(f"no saved fit {key}")
            try:
                return reader(folder)
            except FileNotFoundError as exc:
                if self._folder(key) == folder:  # not replaced: this copy lacks a file
                    raise ArtifactError(
                        f"saved fit {key} is incomplete ({exc.filename} is missing); it will be refitted"
                    ) from None
            except OSError as exc:
                raise ArtifactError(f"saved fit {key} cannot be read ({exc}); it will be refitted") from None
        raise ArtifactError(f"saved fit {key} was replaced {READ_ATTEMPTS} times while being read; try again")

    def record(self, key: str) -> dict:
        """The fit's record as saved (not checked: listing reads only records)."""

        def read(folder: Path) -> dict:
            with folders.open_file(folder, "record.json") as handle:
                return parse_record(key, handle.read())

        return self._read(key, read)

    def load(self, key: str) -> FitResult:
        """Load a fit; ArtifactError if it is stale, edited, corrupt or not what the model builds."""

        def read(folder: Path):
            with contextlib.ExitStack() as files:  # both open at once: one copy, even if replaced after
                record_file = files.enter_context(folders.open_file(folder, "record.json"))
                arrays_file = files.enter_context(folders.open_file(folder, "arrays.npz"))
                record = parse_record(key, record_file.read())
                check_record(key, record)
                return record, _read_arrays(key, arrays_file)

        record, arrays = self._read(key, read)
        check_arrays(key, record, arrays)
        return result_from(key, record, arrays)

    def get(self, key: str) -> tuple[FitResult | None, str | None]:
        """(fit, None) if saved and sound; (None, reason) if stale or corrupt; (None, None) if absent."""
        folders.check_key(key)  # a bad key is the caller's error, not a missing fit
        try:
            if self._folder(key) is None:
                return None, None
            return self.load(key), None
        except ArtifactError as exc:
            return None, str(exc)

    def delete(self, key: str) -> None:
        """Remove a fit for good; refused for the fit the `current` pointer names."""
        folders.check_key(key)
        if key == self.current_key():
            raise ArtifactError(
                f"fit {key} is the store's current fit (its `current` file names it); make another fit current first"
            )
        try:
            folders.unlink_key(self.root, key)
        except OSError as exc:
            raise ArtifactError(f"cannot delete fit {key} in {self.root}: {exc}") from None

    def store_ids(self, key: str) -> np.ndarray:
        """A fit's store ids without loading its arrays: from the record, or (records written
        before it held them) from the one npz member, which np.load reads on its own."""
        record = self.record(key)
        if "store_ids" in record:
            return np.asarray(record["store_ids"], dtype=np.int64)

        def read(folder: Path) -> np.ndarray:
            with folders.open_file(folder, "arrays.npz") as handle, np.load(handle, allow_pickle=False) as npz:
                return np.asarray(npz["store_ids"], dtype=np.int64)

        try:
            return self._read(key, read)
        except (KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"saved fit {key} has no readable store ids ({exc}); it will be refitted") from None

    LIST_COLUMNS = (
        "key", "created", "label", "n_stores", "steps", "final_loss", "seconds", "learning_rate", "optimizer",
        "schedule", "seed", "batch_size", "priors", "stale", "data_fingerprint", "arrays_sha256", "record_sha256",
        "parent", "store_ids", "spec",
    )  # fmt: skip

    def keys(self) -> list[str]:
        try:
            return sorted(entry.name for entry in self.root.iterdir() if folders.KEY.fullmatch(entry.name))
        except OSError:
            return []

    def list(self) -> pd.DataFrame:
        """One row per readable record, newest first; nothing but the records is read. `stale`:
        made with other library versions (loading it would refit); `priors` is the record's dict."""
        folders.sweep(self.root)
        versions = running_versions()
        rows = []
        for key in self.keys():
            try:
                rows.append(_list_row(key, self.record(key), versions))
            except ArtifactError:
                continue
        frame = pd.DataFrame(rows, columns=list(self.LIST_COLUMNS))
        return frame.sort_values("created", ascending=False, ignore_index=True)


def _list_row(key: str, rec: dict, versions: dict) -> dict:
    meta, config = rec.get("meta") or {}, rec.get("config") or {}
    return {
        "key": rec.get("key", key),
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
        "record_sha256": rec.get(layout.RECORD_HASH, ""),
        "parent": rec.get("parent"),
        "store_ids": rec.get("store_ids"),  # None in records older than the field
        "spec": rec.get("spec"),
    }
