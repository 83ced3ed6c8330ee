"""The data a saved fit was made on, kept ready under the fits folder for the next reopen.

Reopening a fit (bhm_core.reopen) reads and validates the data files, builds the cube with the
fit's features and the calendar ahead with its public holidays: on Rossmann ~4 s, where the first
forecast after it takes half a second. What that builds depends only on the files, the fit's
features and stores, and the code that builds it, so it is kept as one entry per such key:

    ROOT/.prepared/<key>.npz        the cube and the calendar ahead, as arrays and a manifest
    ROOT/.prepared/.tmp-<id>.npz    an entry being written, renamed into place once complete

The files are named in the key by name, size and modification time (sources.file_stamp, as the
dashboard's data cache does), the code by a SHA-256 of the modules that build the cube. An entry is
written only after its cube matched the fit's data fingerprint, and the key holds that fingerprint.

Nothing is pickled. The manifest names how to rebuild each object from the arrays, from a fixed
list of dataclasses, and a SHA-256 over the manifest and every array is checked on reading: an
entry that is edited, truncated or unreadable is a miss (the data are read from the files again
and the entry rewritten), never an error and never trusted. Writing is best effort: a fits folder
that cannot be written still forecasts. The KEEP most recently used entries are kept, and the
folder is never followed when it is a link.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
import uuid
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from bhm_core.artifacts.folders import STALE_SECONDS
from bhm_core.artifacts.layout import arrays_digest, canonical
from bhm_core.data.covariates import Covariates, Design
from bhm_core.data.cube import SalesCube
from bhm_core.data.features import FeatureSpec
from bhm_core.data.future import FutureCalendar
from bhm_core.data.sources import file_stamp

FOLDER = ".prepared"
KEEP = 4  # a Rossmann entry is ~140 MB, nearly all of it the design
FORMAT = 1
MANIFEST, DIGEST = "__manifest__", "__digest__"
# The only objects an entry may rebuild, by name.
CLASSES = {cls.__name__: cls for cls in (SalesCube, Covariates, Design, FeatureSpec, FutureCalendar)}
BUILDERS = ("data", "reopen.py")  # what builds a reopened fit's cube and calendar, under bhm_core


@cache
def _code_digest() -> str:
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in BUILDERS:
        files = sorted((package / name).rglob("*.py")) if (package / name).is_dir() else [package / name]
        for path in files:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def entry_key(source, calendar_path: Path | None, spec: dict, store_ids, fingerprint: str) -> str:
    """The name of the entry for these inputs: the same files, settings and code give the same key."""
    calendar = None
    if calendar_path is not None:
        try:
            info = calendar_path.stat()
            calendar = [str(calendar_path.resolve()), info.st_size, info.st_mtime_ns]
        except OSError:  # reading it says what is wrong; nothing is kept for a calendar that cannot be read
            calendar = [str(calendar_path), None]
    parts = {
        "format": FORMAT,
        "source": repr(source),
        "files": file_stamp(source),
        "calendar": calendar,
        "spec": spec,
        "stores": np.asarray(store_ids, np.int64).tolist(),
        "fingerprint": fingerprint,
        "code": _code_digest(),
        "libraries": [np.__version__, pd.__version__],
    }
    return hashlib.sha256(canonical(parts)).hexdigest()[:32]


def read(root: Path, key: str) -> tuple[SalesCube, FutureCalendar | None] | None:
    """(cube, calendar ahead) of a sound entry, or None: absent, unreadable or not matching its digest."""
    path = Path(root) / FOLDER / f"{key}.npz"
    if path.parent.is_symlink():  # never followed out of the fits folder
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    manifest, digest = arrays.pop(MANIFEST, None), arrays.pop(DIGEST, None)
    if manifest is None or digest is None or _digest(manifest, arrays) != digest.tobytes().decode(errors="replace"):
        return None
    try:
        tree = json.loads(manifest.tobytes())
        cube, calendar = _decode(tree["cube"], arrays), _decode(tree["calendar"], arrays)
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(cube, SalesCube) or not (calendar is None or isinstance(calendar, FutureCalendar)):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept the longest
    return cube, calendar


def write(root: Path, key: str, cube: SalesCube, calendar: FutureCalendar | None) -> Path | None:
    """Save the entry (atomically) and drop the oldest beyond KEEP; the path, or None if it could not be written."""
    folder = Path(root) / FOLDER
    arrays: dict = {}
    try:
        tree = {"cube": _encode(cube, arrays, "cube"), "calendar": _encode(calendar, arrays, "calendar")}
    except TypeError:  # a field this codec does not know: the reopen still works, uncached
        return None
    manifest = np.frombuffer(canonical(tree), np.uint8)
    arrays[DIGEST] = np.frombuffer(_digest(manifest, arrays).encode(), np.uint8)
    arrays[MANIFEST] = manifest
    temporary = folder / f".tmp-{uuid.uuid4().hex}.npz"
    if folder.is_symlink():
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temporary, folder / f"{key}.npz")
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        return None
    _evict(folder)
    return folder / f"{key}.npz"


def _digest(manifest: np.ndarray, arrays: dict) -> str:
    return hashlib.sha256(manifest.tobytes() + arrays_digest(arrays).encode()).hexdigest()


def _evict(folder: Path) -> None:
    """Keep the KEEP most recently used entries, and remove what a crashed writer left."""
    entries, now = [], time.time()
    for path in folder.glob("*.npz"):
        with contextlib.suppress(OSError):
            entries.append((path.lstat().st_mtime, path))
    for _, path in sorted(entries, reverse=True)[KEEP:]:
        with contextlib.suppress(OSError):
            path.unlink()
    for path in folder.glob(".tmp-*.npz"):
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime > STALE_SECONDS:
                path.unlink()


def _encode(value, arrays: dict, name: str):
    """A JSON tree for `value`; its arrays go into `arrays` under names derived from `name`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:  # np.savez would pickle it
            raise TypeError(f"cannot keep an array of Python objects ({name}) in a prepared entry")
        arrays[name] = value
        return {"array": name}
    if isinstance(value, np.datetime64):
        return {"datetime64": str(value), "unit": np.datetime_data(value.dtype)[0]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays, f"{name}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        # pairs, not an object: the manifest's JSON sorts an object's keys, and the order may matter
        return {"dict": [[str(k), _encode(v, arrays, f"{name}.{k}")] for k, v in value.items()]}
    if isinstance(value, pd.DataFrame):
        return {"frame": [_encode_column(value[c], arrays, f"{name}.{i}") for i, c in enumerate(value.columns)]}
    if dataclasses.is_dataclass(value) and type(value).__name__ in CLASSES:
        fields = {
            f.name: _encode(getattr(value, f.name), arrays, f"{name}.{f.name}") for f in dataclasses.fields(value)
        }
        return {"class": type(value).__name__, "fields": fields}
    raise TypeError(f"cannot keep a {type(value).__name__} in a prepared entry")


def _encode_column(column: pd.Series, arrays: dict, name: str) -> dict:
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        missing = column.isna().to_numpy()
        arrays[f"{name}.missing"] = missing
        arrays[name] = np.where(missing, "", column.to_numpy(dtype=object, na_value="")).astype(str)
        return {"name": str(column.name), "dtype": str(column.dtype), "text": name}
    values = column.to_numpy()
    if values.dtype.hasobject:
        raise TypeError(f"cannot keep column {column.name!r} of dtype {column.dtype} in a prepared entry")
    arrays[name] = values
    return {"name": str(column.name), "dtype": str(column.dtype), "array": name}


def _decode(node, arrays: dict):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        raise ValueError("a list is not part of a prepared entry")
    if "array" in node:
        return arrays[node["array"]]
    if "datetime64" in node:
        return np.datetime64(node["datetime64"], node["unit"])
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    if "dict" in node:
        return {k: _decode(v, arrays) for k, v in node["dict"]}
    if "frame" in node:
        return pd.DataFrame({column["name"]: _decode_column(column, arrays) for column in node["frame"]})
    cls = CLASSES[node["class"]]
    return cls(**{field: _decode(v, arrays) for field, v in node["fields"].items()})


def _decode_column(column: dict, arrays: dict) -> pd.Series:
    if "text" in column:
        values = arrays[column["text"]].astype(object)
        values[arrays[f"{column['text']}.missing"]] = None
        return pd.Series(values, dtype=column["dtype"])
    return pd.Series(arrays[column["array"]], dtype=column["dtype"])
