"""Data sources: built-in demo, a Kaggle-layout folder, or an own long CSV with mapped columns.

Each source is a frozen dataclass (hashable: the dashboard caches on it) and `load_dataset` turns
any of them into the same validated pair of tables.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bhm_core.data.cube import SalesCube, build_cube
from bhm_core.data.features import FeatureSpec
from bhm_core.data.validate import default_stores, validate_stores, validate_train
from bhm_core.errors import ConfigError, DataError

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB: Rossmann's train.csv is 38 MB; far larger files are refused.
MAX_MB_ENV = "BHM_MAX_MB"  # raises (or lowers) that limit, in MB of 2**20 bytes; --max-mb on the command line
MAPPABLE_COLUMNS = (
    "Store",
    "Date",
    "Sales",
    "Open",
    "Promo",
    "StateHoliday",
    "SchoolHoliday",
    "StoreType",
    "Assortment",
    "Promo2",
)
STORE_LEVEL_COLUMNS = ("StoreType", "Assortment", "Promo2")


@dataclass(frozen=True)
class DemoSource:
    """Synthetic retail chain drawn from the model itself (see demo.py)."""

    n_stores: int = 200
    n_days: int = 942
    seed: int = 0
    kind = "demo"

    @property
    def label(self) -> str:
        return f"synthetic demo data ({self.n_stores} stores, seed {self.seed})"


@dataclass(frozen=True)
class KaggleDirSource:
    """A folder with Kaggle's train.csv (or train.csv.gz) and store.csv."""

    path: str
    kind = "kaggle-dir"

    @property
    def label(self) -> str:
        return f"Kaggle-layout folder {self.path}"


@dataclass(frozen=True)
class CsvSource:
    """An own long CSV; `columns` maps our names (MAPPABLE_COLUMNS) to the file's header names."""

    path: str
    columns: tuple = field(default_factory=tuple)  # ((our_name, file_name), ...)
    kind = "csv"

    @property
    def label(self) -> str:
        return f"CSV file {Path(self.path).name}"


@dataclass(frozen=True, eq=False)
class Dataset:
    train: pd.DataFrame
    stores: pd.DataFrame
    kind: str
    label: str
    truth: dict | None = None  # true parameters, for the synthetic demo only
    notes: tuple[str, ...] = ()  # what loading had to assume (a store without attributes), to show the user
    file_rows: dict = field(default_factory=dict)  # rows read per file name, for the fit's lineage

    def cube(self, spec: FeatureSpec | None = None) -> SalesCube:
        return build_cube(self.train, self.stores, spec, label=self.label)


def _bytes(n: int) -> str:
    # Exact bytes below 1 MiB so that a small configured limit is shown as it was set, not as "0 MB".
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.1f} MB"


def _one_line(exc: Exception) -> str:
    # pandas' tokenizer messages end in a newline; the command line promises one line per error.
    return " ".join(str(exc).split())


class _TooLarge(Exception):
    pass


class _CappedReader(io.RawIOBase):
    """Counts the bytes the parser pulls and stops past the cap.

    The size on disk is not enough for .gz: 2 GB of text compresses below any sensible limit and
    would then be parsed into memory. Counting the decompressed stream refuses it after reading
    just over the limit, whatever the compression.
    """

    def __init__(self, stream, limit: int):
        self._stream, self._limit, self._count = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        self._count += n
        if self._count > self._limit:
            raise _TooLarge
        return n


def max_bytes_setting(max_mb: float | None = None) -> int:
    """The largest file read, in bytes: max_mb if given, else BHM_MAX_MB, else DEFAULT_MAX_BYTES."""
    if max_mb is None:
        text = os.environ.get(MAX_MB_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_BYTES
        try:
            max_mb = float(text)
        except ValueError:
            max_mb = math.nan
        if not math.isfinite(max_mb) or max_mb <= 0:
            raise ConfigError(f"{MAX_MB_ENV} must be a number of MB above 0, got {text!r}")
    return max(1, int(max_mb * 2**20))


def read_csv_text(path: Path, max_bytes: int | None = None) -> pd.DataFrame:
    """Read a CSV (optionally .gz) with every column as text; file problems become DataError.
    max_bytes: None reads the setting (max_bytes_setting)."""
    path = Path(path)
    max_bytes = max_bytes_setting() if max_bytes is None else max_bytes
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    advice = (
        f"above the limit of {_bytes(max_bytes)} for one file; raise it with --max-mb or "
        f"{MAX_MB_ENV}, or split the file"
    )
    size = path.stat().st_size
    if size > max_bytes:  # refuse at once, before opening anything
        raise DataError(f"{path.name}: {_bytes(size)} is {advice}")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            capped = io.BufferedReader(_CappedReader(stream, max_bytes), buffer_size=1 << 20)
            return pd.read_csv(
                capped, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8", skipinitialspace=True
            )
    except _TooLarge:
        raise DataError(f"{path.name}: the decompressed text is {advice}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty (expected a header row)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path.name}: not a well-formed CSV ({_one_line(exc)})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path.name}: not a UTF-8 text file") from None
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{path.name}: the compressed file is corrupt or truncated ({_one_line(exc)})") from None
    except OSError as exc:  # permissions, a file removed mid-read: still the user's to fix
        raise DataError(f"{path.name}: cannot read the file ({_one_line(exc)})") from None


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{folder}: no {stem}.csv or {stem}.csv.gz (a Kaggle Rossmann folder holds train.csv and store.csv)"
    )


def _load_kaggle_dir(source: KaggleDirSource, max_bytes: int | None) -> Dataset:
    folder = Path(source.path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    train_path, store_path = _find(folder, "train"), _find(folder, "store")
    raw_train, raw_stores = read_csv_text(train_path, max_bytes), read_csv_text(store_path, max_bytes)
    train = validate_train(raw_train, train_path.name)
    stores, notes = validate_stores(raw_stores, np.unique(train["Store"]), store_path.name)
    rows = {train_path.name: len(raw_train), store_path.name: len(raw_stores)}
    return Dataset(train, stores, source.kind, source.label, notes=notes, file_rows=rows)


def _load_csv(source: CsvSource, max_bytes: int | None) -> Dataset:
    raw = read_csv_text(Path(source.path), max_bytes)
    mapping = dict(source.columns)
    unknown = set(mapping) - set(MAPPABLE_COLUMNS)
    if unknown:
        raise DataError(f"column mapping names unknown field(s) {sorted(unknown)}; allowed: {list(MAPPABLE_COLUMNS)}")
    absent = [f"{ours} <- '{theirs}'" for ours, theirs in mapping.items() if theirs not in raw.columns]
    if absent:
        raise DataError(
            f"{Path(source.path).name}: mapped column(s) not in the file: {absent}; the file has {list(raw.columns)}"
        )
    # A file column that already bears a mapped name (e.g. 'Sales' while Sales <- 'revenue') would
    # otherwise survive the rename as a second, ambiguous 'Sales'.
    shadowed = [c for c in raw.columns if c in mapping and c not in mapping.values()]
    raw = raw.drop(columns=shadowed).rename(columns={theirs: ours for ours, theirs in mapping.items()})
    name = Path(source.path).name
    train = validate_train(raw, name)
    store_ids = np.unique(train["Store"])
    if any(c in raw.columns for c in STORE_LEVEL_COLUMNS):
        per_store = raw.loc[:, ["Store", *[c for c in STORE_LEVEL_COLUMNS if c in raw.columns]]]
        per_store = per_store.assign(Store=train["Store"].to_numpy()).drop_duplicates("Store")
        stores, notes = validate_stores(per_store, store_ids, name)
    else:
        stores, notes = default_stores(store_ids), ()
    return Dataset(train, stores, source.kind, source.label, notes=notes, file_rows={name: len(raw)})


def load_dataset(source, *, max_bytes: int | None = None) -> Dataset:
    """Any source -> validated Dataset. Raises DataError with a readable message. max_bytes: the
    largest file read (None: max_bytes_setting, which reads BHM_MAX_MB)."""
    if isinstance(source, DemoSource):
        from bhm_core.data.demo import generate_demo

        return generate_demo(source)
    if isinstance(source, KaggleDirSource):
        return _load_kaggle_dir(source, max_bytes)
    if isinstance(source, CsvSource):
        return _load_csv(source, max_bytes)
    raise TypeError(f"unknown data source {source!r}")


def sniff_header(path: Path) -> list[str]:
    """Column names of a CSV, for the column-mapping form; reads one line only."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        # utf-8-sig: spreadsheet exports start with a BOM that would stick to the first name.
        with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{Path(path).name}: cannot read the header ({exc})") from None


def source_files(source) -> list[Path]:
    """The files a source reads (those that may exist; the demo reads none)."""
    if isinstance(source, KaggleDirSource):
        folder = Path(source.path).expanduser()
        return [folder / f"{stem}{ext}" for stem in ("train", "store") for ext in (".csv", ".csv.gz")]
    if isinstance(source, CsvSource):
        return [Path(source.path)]
    return []


CALENDAR_NAMES = ("test.csv", "test.csv.gz")  # a Kaggle folder's calendar ahead (Kaggle's test.csv)


def calendar_file(source) -> Path | None:
    """The calendar ahead a Kaggle-layout folder holds (test.csv or test.csv.gz), if any."""
    if not isinstance(source, KaggleDirSource):
        return None
    folder = Path(source.path).expanduser()
    return next((folder / name for name in CALENDAR_NAMES if (folder / name).is_file()), None)


def _under(path: Path, roots) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def folder_within(path, roots) -> Path:
    """`path` with symlinks resolved, when it and every file a Kaggle-layout source reads there lie
    under one of `roots` (themselves resolved); DataError naming the allowed folders otherwise.

    Resolving first means neither `..` nor a link inside an allowed folder leads out of it. A path
    outside is refused whether it exists or not, so the check says nothing about the rest of the
    disk."""
    roots = [Path(r).resolve() for r in roots]
    allowed = ", ".join(str(r) for r in roots) or "(none)"
    folder = Path(path).expanduser().resolve()
    if not _under(folder, roots):
        raise DataError(f"{path}: outside the folders the dashboard may read; allowed are folders under {allowed}")
    for file in [*source_files(KaggleDirSource(str(folder))), *(folder / n for n in CALENDAR_NAMES)]:
        if file.is_symlink() and not _under(file.resolve(), roots):
            raise DataError(
                f"{file.name} in {path} links outside the folders the dashboard may read; allowed are "
                f"files under {allowed}"
            )
    return folder


def file_stamp(source) -> str:
    """Name, size and modification time of each file the source reads ("" for the demo).

    A source is a path, and a folder or a file can change under the same path: a cache keyed on
    the source alone would keep serving the old data. Files that do not exist are left out.
    """
    stamps = []
    for path in source_files(source):
        try:
            info = path.stat()
        except OSError:
            continue
        stamps.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return ",".join(stamps)
