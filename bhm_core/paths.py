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


def data_root() -> Path:
    configured = os.environ.get(DATA_ROOT_ENV)
    return Path(configured).expanduser().absolute() if configured else PROJECT_ROOT / "data"


def raw_root() -> Path:
    """Managed downloads: one folder per data set (kaggle_source.MANAGED_DATASETS)."""
    return data_root() / "raw"
