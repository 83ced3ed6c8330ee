"""Cached access to data: cubes as shared resources, small derived tables as cached data.

Sources are frozen dataclasses, but a folder or a file can change under the same path, so the
cache key is the source's repr plus its file stamp (bhm_core.data.sources.file_stamp). Cubes are
large and never modified, so they are cached as resources (one copy shared by all sessions, no
pickling; the raw tables are dropped once the cube is built); the per-store table, the status
grid and store histories are small and are cached as data keyed by the cube's content
fingerprint. What they hold is computed by bhm_core.data.summaries.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from bhm_core.data import summaries
from bhm_core.data.cube import SalesCube
from bhm_core.data.sources import file_stamp, load_dataset
from bhm_core.errors import BhmError
from ui.session import state
from ui.session.jobs import ResultCache

UPLOAD_DIR = Path(tempfile.gettempdir()) / "bhm_uploads"


def source_key(source) -> str:
    return f"{source!r}|{file_stamp(source)}"


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


@st.cache_resource(max_entries=3, show_spinner=False)
def _truth(key: str, _source) -> dict | None:
    return load_dataset(_source).truth


def truth(source) -> dict | None:
    """The true parameters of synthetic data (the demo), None for real data."""
    if source.kind != "demo":
        return None
    try:
        return _truth(source_key(source), source)
    except BhmError:
        return None


def loaded_cube() -> SalesCube | None:
    """The cube of the data in use when it loads, without saying anything when it does not."""
    try:
        return load_cube(state.current_source())
    except BhmError:
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def store_table(fingerprint: str, _cube: SalesCube) -> pd.DataFrame:
    """One row per store: attributes plus mean sales over observed days and day counts."""
    return summaries.store_table(_cube)


@st.cache_data(max_entries=8, show_spinner=False)
def status_grid(fingerprint: str, _cube: SalesCube) -> dict:
    return summaries.status_grid(_cube)


@st.cache_data(max_entries=16, show_spinner=False)
def store_history(fingerprint: str, _cube: SalesCube, store_ids: tuple, weekly: bool) -> pd.DataFrame:
    """Tidy (Store, Date, Sales) over observed days; a NaN row breaks the line over long gaps."""
    return summaries.history_frame(_cube, list(store_ids), weekly)


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


# ----------------------------------------------------------------------------------------------
# Fits and evaluations. A fit key names its content (data, priors, settings, versions), so what is
# cached under it is shared by all sessions; partial fits carry their own suffixed keys.


@st.cache_resource(show_spinner=False)
def evaluations() -> ResultCache:
    """Backtests and cold-start trials of this process, keyed by everything that decides them
    (bhm_core.evaluation.plans.*_key): a page that comes back, or another session asking the
    same, reuses them."""
    return ResultCache(max_entries=16)


@st.cache_resource(max_entries=4, show_spinner=False)
def _fit_cube(fingerprint: str, store_ids: tuple, _cube: SalesCube) -> SalesCube:
    return _cube.select_stores(list(store_ids))


def fit_cube(cube: SalesCube, store_ids) -> SalesCube:
    """The cube of the given stores (what a fit on them sees). Raises DataError for unknown ids."""
    return _fit_cube(cube.fingerprint, tuple(int(i) for i in store_ids), cube)


@st.cache_resource(max_entries=32, show_spinner=False)
def saved_fit(root: str, key: str):
    """A saved fit, loaded once per process. Raises ArtifactError (not cached) when unusable."""
    from bhm_core.artifacts import FitStore

    return FitStore(root).load(key)


@st.cache_data(max_entries=512, show_spinner=False)
def fit_usability(fingerprint: str, root: str, key: str, stamp: str, data_fingerprint: str, _cube: SalesCube) -> str:
    """ "yes" when the saved fit was made on these data (on its stores of this cube), else "other
    data" or "unreadable". Reads only the fit's store ids (not its arrays) and hashes that subset
    of the cube outside the fit-cube cache, so a long history never evicts the cubes in use.
    Cached per cube and artifact (stamp: the record's checksum): the history table asks for
    every saved fit on every rerun."""
    from bhm_core.artifacts import FitStore

    try:
        ids = FitStore(root).store_ids(key)
    except BhmError:
        return "unreadable"
    try:
        sub = _cube.select_stores(ids)
    except BhmError:  # stores this data does not have
        return "other data"
    return "yes" if sub.fingerprint == data_fingerprint else "other data"
