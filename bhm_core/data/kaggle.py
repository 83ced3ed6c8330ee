"""Fetch Kaggle data sets into the folders the product manages under ``data/raw/``.

The destination is never a free path: each downloadable data set has one managed folder,
``<raw root>/<name>``, named in MANAGED_DATASETS, and a download can only ever replace that folder.
It lands in a scratch folder inside the raw root, is checked (the files are there, their headers
look right, and they pass the same validation the loaders apply), and only then swaps places with
the previous copy by rename. A failed, refused or partial download never costs the user a copy
that worked, and a previous copy the product did not write itself (files put there by hand) is kept
beside the new one instead of being deleted.

Credentials are only ever described as found or not found, and where to put them: the key, the
user name and the credential file's path are never returned in a message, because the dashboard
shows this status to every visitor.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
import time
import types
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bhm_core.data.kaggle_auth import default_api_factory
from bhm_core.data.kaggle_errors import authentication_error, clip, corrupt, download_error, reason
from bhm_core.errors import DataError

logger = logging.getLogger(__name__)

# Written into every folder a download installs: a folder holding it is the product's own, so
# replacing it may remove the old copy; one without it was put there by someone else and is kept.
MANAGED_MARKER = ".bhm-download.json"

TRAIN_COLUMNS = ("Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "Promo", "StateHoliday", "SchoolHoliday")
STORE_COLUMNS = (
    "Store",
    "StoreType",
    "Assortment",
    "CompetitionDistance",
    "CompetitionOpenSinceMonth",
    "CompetitionOpenSinceYear",
    "Promo2",
    "Promo2SinceWeek",
    "Promo2SinceYear",
    "PromoInterval",
)


@dataclass(frozen=True)
class ManagedDataset:
    """A Kaggle data set the product can download, and the one folder it lives in."""

    name: str  # the managed folder under the raw root
    title: str
    slug: str  # owner/name on Kaggle
    required: Mapping[str, tuple[str, ...]]  # file -> columns its header must hold
    optional: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/datasets/{self.slug}"


ROSSMANN = ManagedDataset(
    name="rossmann",
    title="Rossmann Store Sales",
    slug="pratyushakar/rossmann-store-sales",
    required=types.MappingProxyType({"train.csv": TRAIN_COLUMNS, "store.csv": STORE_COLUMNS}),
    optional=("test.csv",),
)
MANAGED_DATASETS: Mapping[str, ManagedDataset] = types.MappingProxyType({ROSSMANN.name: ROSSMANN})

ProgressCallback = Callable[[str], None]
ApiFactory = Callable[[], object]

# A real header is a few hundred bytes; a longer first line means this is not the CSV we expect,
# and stopping there keeps the check cheap on the 40 MB train.csv.
_MAX_HEADER_BYTES = 64 * 1024
# Kaggle ships one zip, older exports zip each file again inside it; deeper nesting is not ours.
_MAX_ARCHIVE_DEPTH = 3


def managed_dataset(name: str) -> ManagedDataset:
    """The managed data set of that name; DataError naming the allowed ones otherwise."""
    try:
        return MANAGED_DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"no downloadable data set {name!r}; allowed: {', '.join(sorted(MANAGED_DATASETS))}") from None


def managed_dir(name: str, raw_root: str | os.PathLike) -> Path:
    """The one folder a download of data set `name` may write: ``<raw_root>/<name>``."""
    return Path(raw_root).expanduser().absolute() / managed_dataset(name).name


# --------------------------------------------------------------------------------------------
# Download


def download_dataset(
    name: str,
    raw_root: str | os.PathLike,
    *,
    api_factory: ApiFactory | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download managed data set `name` into its folder under `raw_root` and return that folder.

    ``api_factory`` returns an object with ``authenticate()`` and
    ``dataset_download_files(dataset, path=..., unzip=..., quiet=...)``; it defaults to the real
    KaggleApi. ``on_progress`` receives one short message per step. Every failure raises
    DataError and leaves the managed folder exactly as it was; nothing outside ``raw_root`` is
    ever written, moved or removed.
    """
    dataset = managed_dataset(name)
    root = Path(raw_root).expanduser().absolute()
    dest = managed_dir(name, root)
    report = on_progress or (lambda message: None)
    try:
        _download_into(dataset, dest, api_factory or default_api_factory, report)
    except DataError as exc:
        raise DataError(f"{exc} {_unchanged_note(dest)}") from (exc.__cause__ or exc)
    except OSError as exc:
        raise DataError(
            f"Could not write the {dataset.title} download into {root}: {reason(exc)}. Check "
            f"that {root} is writable and has room for about 100 MB. {_unchanged_note(dest)}"
        ) from exc
    report(f"{dataset.title} data ready")
    logger.info("Downloaded %s into %s", dataset.slug, dest)
    return dest


def _download_into(dataset: ManagedDataset, dest: Path, api_factory: ApiFactory, report: ProgressCallback) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise DataError(
            f"{dest} is not a plain folder (a link or a file); a download only replaces "
            f"a folder it can rename as a whole. Move it away first."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same parent means same filesystem, so the final swap is a rename and never a copy.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    try:
        report("Signing in to Kaggle")
        api = _authenticated_api(api_factory, dataset)
        report(f"Downloading {dataset.slug}")
        download_dir = staging / "download"
        download_dir.mkdir()
        _fetch(api, dataset, download_dir)
        report("Unpacking")
        _unpack_archives(dataset, download_dir)
        report(f"Checking {', '.join(dataset.required)}")
        ready = _collect_checked_files(dataset, download_dir, staging / "ready")
        _validate_contents(dataset, ready)
        (ready / MANAGED_MARKER).write_text(
            json.dumps({"dataset": dataset.slug, "downloaded": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        )
        report("Installing the new copy")
        kept = _swap_into_place(ready, dest, aside=staging / "previous")
        if kept is not None:
            report(f"The previous copy was not written by a download; it was kept as {kept.name}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _validate_contents(dataset: ManagedDataset, folder: Path) -> None:
    """The loaders' own validation on the new copy, before it replaces the old one."""
    if dataset is not ROSSMANN:
        return
    from bhm_core.data.sources import KaggleDirSource, load_dataset

    try:
        load_dataset(KaggleDirSource(str(folder)))
    except DataError as exc:
        raise corrupt(dataset, f"its files do not pass validation ({exc})") from exc


def _unchanged_note(dest: Path) -> str:
    if dest.exists():
        return "The existing copy was left unchanged."
    return "Nothing was written."


def _authenticated_api(api_factory: ApiFactory, dataset: ManagedDataset):
    try:
        api = api_factory()
        api.authenticate()
    except DataError:
        raise
    # kaggle 2.x answers missing credentials with exit(1), so SystemExit must be caught here.
    except (Exception, SystemExit) as exc:
        raise authentication_error(exc, dataset) from exc
    return api


def _fetch(api, dataset: ManagedDataset, target: Path) -> None:
    try:
        # We unzip ourselves: kaggle's own unzip turns a bad archive into a bare ValueError or
        # RuntimeError, which we could not tell apart from other failures.
        api.dataset_download_files(dataset.slug, path=str(target), unzip=False, quiet=True)
    except DataError:
        raise
    except (Exception, SystemExit) as exc:
        error = download_error(exc, dataset)
        if error is None:
            raise  # local disk trouble: download_dataset words it with the destination in hand
        raise error from exc


def _swap_into_place(ready: Path, dest: Path, aside: Path) -> Path | None:
    """Rename `ready` to `dest`. A previous copy moves to `aside` (removed with the staging folder)
    when a download wrote it, else next to `dest` under a dated name, which is returned."""
    if not dest.exists():
        os.replace(ready, dest)
        return None
    ours = (dest / MANAGED_MARKER).is_file()
    if not ours:
        aside = dest.with_name(f"{dest.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(dest, aside)
    try:
        os.replace(ready, dest)
    except BaseException:
        os.replace(aside, dest)
        raise
    return None if ours else aside


# --------------------------------------------------------------------------------------------
# Unpacking and checking


def _unpack_archives(dataset: ManagedDataset, folder: Path) -> None:
    for _ in range(_MAX_ARCHIVE_DEPTH):
        archives = _zip_files(folder)
        if not archives:
            return
        for archive in archives:
            _extract(dataset, archive)
    if _zip_files(folder):
        raise corrupt(dataset, f"it holds archives nested more than {_MAX_ARCHIVE_DEPTH} levels deep")


def _zip_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".zip")


def _extract(dataset: ManagedDataset, archive: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            # extractall strips absolute paths and "..", so members cannot escape the folder.
            bundle.extractall(archive.parent)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise corrupt(dataset, f"{archive.name} is not a complete zip archive ({reason(exc)})") from exc
    except (NotImplementedError, RuntimeError) as exc:
        raise corrupt(dataset, f"{archive.name} cannot be unpacked ({reason(exc)})") from exc
    archive.unlink()


def _collect_checked_files(dataset: ManagedDataset, download_dir: Path, ready: Path) -> Path:
    ready.mkdir()
    for name, columns in dataset.required.items():
        found = _find_file(download_dir, name)
        if found is None:
            raise corrupt(dataset, f"{name} is missing (the download held: {_listing(download_dir)})")
        _check_header(dataset, found, columns)
        os.replace(found, ready / name)
    for name in dataset.optional:
        found = _find_file(download_dir, name)
        if found is not None:
            os.replace(found, ready / name)
    return ready


def _find_file(folder: Path, name: str) -> Path | None:
    # A zip may wrap its files in a subfolder; the shallowest match is the real one.
    matches = [p for p in folder.rglob(name) if p.is_file()]
    return min(matches, key=lambda p: (len(p.parts), str(p))) if matches else None


def _listing(folder: Path, limit: int = 10) -> str:
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if not names:
        return "no files"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _check_header(dataset: ManagedDataset, path: Path, expected: tuple[str, ...]) -> None:
    with path.open("rb") as handle:
        first_line = handle.readline(_MAX_HEADER_BYTES)
        has_rows = bool(handle.read(1))
    if not first_line:
        raise corrupt(dataset, f"{path.name} is empty")
    if not first_line.endswith(b"\n") and len(first_line) >= _MAX_HEADER_BYTES:
        raise corrupt(dataset, f"{path.name} does not start with a CSV header line")
    columns = _parse_header(dataset, path.name, first_line)
    missing = [c for c in expected if c not in columns]
    if missing:
        raise corrupt(
            dataset,
            f"{path.name} lacks the column(s) {', '.join(missing)}; its header is "
            f"{clip(','.join(columns), 200)!r}, expected {','.join(expected)!r}",
        )
    if not has_rows:
        raise corrupt(dataset, f"{path.name} has a header but no rows")


def _parse_header(dataset: ManagedDataset, name: str, line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise corrupt(dataset, f"{name} is not UTF-8 text") from exc
    row = next(csv.reader([text.strip("\r\n")]), [])
    return [cell.strip() for cell in row]
