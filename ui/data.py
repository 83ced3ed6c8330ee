"""Cached access to data: cubes as shared resources, small derived tables as cached data.

Sources are frozen dataclasses, but a folder or a file can change under the same path, so the
cache key is the source's repr plus the size and modification time of the files it reads.
Cubes are large and never modified, so they are cached as resources (one copy shared by all
sessions, no pickling; the raw tables are dropped once the cube is built); the per-store table,
the status grid and store histories are small and are cached as data keyed by the cube's content
fingerprint.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.cube import CLOSED, MISSING, SalesCube
from bhm_core.errors import BhmError
from bhm_core.sources import CsvSource, KaggleDirSource, load_dataset

from . import state
from .charts import history_frame, status_grid

UPLOAD_DIR = Path(tempfile.gettempdir()) / "bhm_uploads"


def _file_stamp(source) -> str:
    if isinstance(source, KaggleDirSource):
        folder = Path(source.path).expanduser()
        paths = [folder / f"{stem}{ext}" for stem in ("train", "store") for ext in (".csv", ".csv.gz")]
    elif isinstance(source, CsvSource):
        paths = [Path(source.path)]
    else:
        return ""
    stamps = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        stamps.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return ",".join(stamps)


def source_key(source) -> str:
    return f"{source!r}|{_file_stamp(source)}"


@st.cache_resource(max_entries=3, show_spinner="Reading and checking the data…")
def _cube(key: str, _source) -> SalesCube:
    return load_dataset(_source).cube()


def load_cube(source) -> SalesCube:
    """Raises BhmError (the message is for the user)."""
    return _cube(source_key(source), source)


def try_source(source) -> bool:
    """Load a newly chosen source; on success it becomes the data in use, on failure the message
    is shown and the previous data stays in use."""
    try:
        load_cube(source)
    except BhmError as exc:
        st.error(str(exc))
        return False
    state.set_source(source)
    return True


def current_cube() -> SalesCube | None:
    """The cube of the data in use, or None after showing why it cannot be loaded."""
    source = state.current_source()
    try:
        return load_cube(source)
    except BhmError as exc:
        st.error(f"{source.label} cannot be loaded any more: {exc}")
        st.info("Choose the data again on the Data page.")
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def store_table(fingerprint: str, _cube: SalesCube) -> pd.DataFrame:
    """One row per store: attributes plus mean sales over observed days and day counts."""
    observed = _cube.observed
    n_obs = observed.sum(axis=1)
    total = _cube.sales.sum(axis=1, dtype=np.float64)
    mean = np.divide(total, n_obs, out=np.full(len(n_obs), np.nan), where=n_obs > 0)
    table = _cube.stores.loc[:, ["Store", "StoreType", "Assortment", "Promo2"]].copy()
    table["Promo2"] = table["Promo2"].astype(bool)
    table["MeanSales"] = mean.round(0)
    table["ObservedDays"] = n_obs
    table["ClosedDays"] = (_cube.status == CLOSED).sum(axis=1)
    table["NoRowDays"] = (_cube.status == MISSING).sum(axis=1)
    return table


@st.cache_data(max_entries=8, show_spinner=False)
def cached_status_grid(fingerprint: str, _cube: SalesCube):
    return status_grid(_cube)


@st.cache_data(max_entries=16, show_spinner=False)
def store_history(fingerprint: str, _cube: SalesCube, store_ids: tuple, weekly: bool) -> pd.DataFrame:
    """Tidy (Store, Date, Sales) over observed days; a NaN row breaks the line over long gaps."""
    return history_frame(_cube, list(store_ids), weekly)


def save_upload(uploaded) -> Path:
    """Write an uploaded file once (content-addressed) and return its path; reruns reuse it."""
    remembered = st.session_state.get(state.UPLOAD)
    if remembered and remembered[0] == uploaded.file_id and Path(remembered[1]).is_file():
        return Path(remembered[1])
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(uploaded.name).name) or "upload.csv"
    path = UPLOAD_DIR / digest / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    st.session_state[state.UPLOAD] = (uploaded.file_id, str(path))
    return path
