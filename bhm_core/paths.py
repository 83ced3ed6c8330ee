"""Where the product keeps what it manages: downloads, fits, uploads, caches.

Everything lives under one data root, ``data/`` beside the package unless BHM_DATA_ROOT names
another folder (a server points it at a volume). The product writes, replaces and removes files
only inside these folders.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT_ENV = "BHM_DATA_ROOT"
FIT_DIR_ENV = "BHM_FIT_DIR"
# More folders the dashboard's "Local folder" source may read, besides the data root.
FOLDER_ROOTS_ENV = "BHM_FOLDER_ROOTS"


def data_root() -> Path:
    configured = os.environ.get(DATA_ROOT_ENV)
    return Path(configured).expanduser().absolute() if configured else PROJECT_ROOT / "data"


def raw_root() -> Path:
    """Managed downloads: one folder per data set (kaggle_source.MANAGED_DATASETS)."""
    return data_root() / "raw"


def fits_root() -> Path:
    """Saved fits: BHM_FIT_DIR when set, else ``fits/`` under the data root."""
    configured = os.environ.get(FIT_DIR_ENV)
    return Path(configured).expanduser().absolute() if configured else data_root() / "fits"


def uploads_root() -> Path:
    """Files uploaded to the dashboard, one private folder per browser session."""
    return data_root() / "uploads"


def folder_roots() -> tuple[Path, ...]:
    """Folders (symlinks resolved) under which the dashboard may read a data folder: the data root
    and those listed in BHM_FOLDER_ROOTS (separated by os.pathsep; relative ones start at the
    project folder)."""
    listed = [Path(p.strip()).expanduser() for p in os.environ.get(FOLDER_ROOTS_ENV, "").split(os.pathsep)]
    roots = [data_root(), *(p if p.is_absolute() else PROJECT_ROOT / p for p in listed if str(p) != ".")]
    return tuple(dict.fromkeys(p.resolve() for p in roots))
