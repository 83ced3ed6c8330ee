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

Nothing is pickled, and nothing in an entry names what to build: the layout of the cube and the
calendar is fixed here, the manifest holds only values, array names and the stores table's column
dtypes from a fixed list of plain types (the arrays read with allow_pickle=False), and a SHA-256
over the manifest and every array is checked on reading: an entry that is edited, truncated or
unreadable is a miss (the data are read from the files again and the entry rewritten), never an
error and never trusted. Writing is best effort: a fits folder that cannot be written still
forecasts. The KEEP most recently used entries are kept, and the
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
FORMAT = 2
MANIFEST, DIGEST = "__manifest__", "__digest__"
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
        cube, calendar = _decode_cube(tree["cube"], arrays), _decode_calendar(tree["calendar"], arrays)
    except (ValueError, KeyError, TypeError):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept the longest
    return cube, calendar


def write(root: Path, key: str, cube: SalesCube, calendar: FutureCalendar | None) -> Path | None:
    """Save the entry (atomically) and drop the oldest beyond KEEP; the path, or None if it could not be written."""
    folder = Path(root) / FOLDER
    arrays: dict = {}
    try:
        tree = {"cube": _encode_cube(cube, arrays), "calendar": _encode_calendar(calendar, arrays)}
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


# The entry's layout is fixed here, object by object: the manifest holds values and array names,
# never which class to build, so reading an entry can only make a SalesCube and a FutureCalendar.
CUBE_PARTS = ("covariates", "design", "stores", "spec")  # SalesCube fields with a layout of their own
CALENDAR_PARTS = ("values", "extra")


def _encode_cube(cube: SalesCube, arrays: dict) -> dict:
    return {
        **_encode_fields(cube, arrays, "cube", skip=CUBE_PARTS),
        "covariates": _encode_fields(cube.covariates, arrays, "covariates"),
        "design": _encode_fields(cube.design, arrays, "design"),
        "stores": _encode_frame(cube.stores, arrays, "stores"),
        "spec": dataclasses.asdict(cube.spec),
    }


def _decode_cube(node: dict, arrays: dict) -> SalesCube:
    return SalesCube(
        **_decode_fields(SalesCube, node, arrays, skip=CUBE_PARTS),
        covariates=Covariates(**_decode_fields(Covariates, node["covariates"], arrays)),
        design=Design(**_decode_fields(Design, node["design"], arrays)),
        stores=_decode_frame(node["stores"], arrays),
        spec=FeatureSpec(**node["spec"]),
    )


def _encode_calendar(calendar: FutureCalendar | None, arrays: dict) -> dict | None:
    if calendar is None:
        return None
    values = []  # pairs, not an object: the manifest's JSON sorts an object's keys, and the order may matter
    for name, grid in calendar.values.items():
        values.append([name, _encode_value(grid, arrays, f"calendar.values.{name}")])
    return {
        **_encode_fields(calendar, arrays, "calendar", skip=CALENDAR_PARTS),
        "values": values,
        "extra": None if calendar.extra is None else _encode_frame(calendar.extra, arrays, "calendar.extra"),
    }


def _decode_calendar(node: dict | None, arrays: dict) -> FutureCalendar | None:
    if node is None:
        return None
    return FutureCalendar(
        **_decode_fields(FutureCalendar, node, arrays, skip=CALENDAR_PARTS),
        values={name: _decode_value(value, arrays) for name, value in node["values"]},
        extra=None if node["extra"] is None else _decode_frame(node["extra"], arrays),
    )


def _encode_fields(obj, arrays: dict, prefix: str, skip=()) -> dict:
    return {
        f.name: _encode_value(getattr(obj, f.name), arrays, f"{prefix}.{f.name}")
        for f in dataclasses.fields(obj)
        if f.name not in skip
    }


def _decode_fields(cls, node: dict, arrays: dict, skip=()) -> dict:
    return {f.name: _decode_value(node[f.name], arrays) for f in dataclasses.fields(cls) if f.name not in skip}


def _encode_value(value, arrays: dict, name: str):
    """A plain field as JSON: an array by its name in `arrays`, a date, a tuple of plain values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:  # np.savez would pickle it
            raise TypeError(f"cannot keep an array of Python objects ({name}) in a prepared entry")
        arrays[name] = value
        return {"array": name}
    if isinstance(value, np.datetime64):
        return {"datetime64": str(value), "unit": np.datetime_data(value.dtype)[0]}
    if isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return {"tuple": list(value)}
    raise TypeError(f"cannot keep a {type(value).__name__} ({name}) in a prepared entry")


def _decode_value(node, arrays: dict):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if "array" in node:
        return arrays[node["array"]]
    if "datetime64" in node:
        return np.datetime64(node["datetime64"], node["unit"])
    if "tuple" in node and all(isinstance(v, (bool, int, float, str)) for v in node["tuple"]):
        return tuple(node["tuple"])
    raise ValueError(f"a prepared entry holds a value of no known layout: {str(node)[:80]}")


def _encode_frame(frame: pd.DataFrame, arrays: dict, prefix: str) -> list:
    columns = []
    for i, name in enumerate(frame.columns):
        column, key = frame[name], f"{prefix}.{i}"
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            missing = column.isna().to_numpy()
            arrays[f"{key}.missing"] = missing
            arrays[key] = np.where(missing, "", column.to_numpy(dtype=object, na_value="")).astype(str)
            columns.append({"name": str(name), "dtype": str(column.dtype), "text": key})
        else:
            columns.append(
                {"name": str(name), "dtype": str(column.dtype), **_encode_value(column.to_numpy(), arrays, key)}
            )
    return columns


TEXT_DTYPES = ("object", "str", "string")  # the text columns' dtypes an entry may name
NULLABLE_DTYPES = (
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float32",
    "Float64",
    "boolean",
)


def _column_dtype(name: str, text: bool):
    """The dtype a column's entry names, if it is one of plain values: never an extension type of
    any other kind, which pandas would build from the name alone."""
    if text:
        if name in TEXT_DTYPES:
            return name
    elif name in NULLABLE_DTYPES:
        return name
    else:
        dtype = np.dtype(name)  # a name NumPy does not know raises TypeError: the entry is a miss
        if dtype.kind in "biufM":
            return dtype
    raise ValueError(f"a prepared entry names the column dtype {name!r}")


def _decode_frame(columns: list, arrays: dict) -> pd.DataFrame:
    out = {}
    for column in columns:
        if "text" in column:
            text = pd.Series(arrays[column["text"]]).astype(_column_dtype(column["dtype"], text=True))
            out[column["name"]] = text.where(~arrays[f"{column['text']}.missing"])
        else:
            dtype = _column_dtype(column["dtype"], text=False)
            out[column["name"]] = pd.Series(arrays[column["array"]], dtype=dtype)
    return pd.DataFrame(out)
