"""Cached access to data: cubes as shared resources, small derived tables as cached data.

Sources are frozen dataclasses, but a folder or a file can change under the same path, so the
cache key is the source's repr plus its file stamp (bhm_core.data.sources.file_stamp). Cubes are
large and never modified, so they are cached as resources (one copy shared by all sessions, no
pickling; the raw tables are dropped once the cube is built); the per-store table, the status
grid and store histories are small and are cached as data keyed by the cube's content
fingerprint. What they hold is computed by bhm_core.data.summaries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from bhm_core import paths
from bhm_core.data import summaries
from bhm_core.data.cube import SalesCube
from bhm_core.data.future import FutureCalendar, read_calendar
from bhm_core.data.sources import CsvSource, calendar_file, file_stamp, load_dataset, max_bytes_setting
from bhm_core.errors import BhmError
from ui.session import state, uploads
from ui.session.jobs import ResultCache


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
    drop_unused_uploads()  # an upload the previous data were read from is done with
    return True


def current_cube() -> SalesCube | None:
    """The cube of the data in use, or None after showing why it cannot be loaded."""
    source = state.current_source()
    keep_uploads_fresh()
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


@st.cache_resource(show_spinner=False)
def sweep_uploads_at_start() -> list[str]:
    """Once per server process: uploads of sessions long gone (uploads.sweep)."""
    return uploads.sweep(paths.uploads_root(), uploads.max_age_seconds())


def session_uploads() -> Path:
    """This session's private upload folder (made again if a sweep took it)."""
    if state.UPLOAD_FOLDER not in st.session_state:
        st.session_state[state.UPLOAD_FOLDER] = uuid.uuid4().hex
    return uploads.private_folder(paths.uploads_root(), st.session_state[state.UPLOAD_FOLDER])


def keep_uploads_fresh() -> None:
    """Called on every run that uses the data: the session's uploads are not old leftovers."""
    if state.UPLOAD_FOLDER in st.session_state:
        uploads.touch(paths.uploads_root() / st.session_state[state.UPLOAD_FOLDER])


def _uploads_in_use() -> list[str]:
    used = [(st.session_state.get(slot) or (None, None))[1] for slot in (state.UPLOAD, state.CALENDAR_UPLOAD)]
    source = st.session_state.get(state.SOURCE)
    if isinstance(source, CsvSource):
        used.append(source.path)
    choice = st.session_state.get(state.CALENDAR)
    if choice is not None:
        used.append(choice.path)
    return [u for u in used if u]


def save_upload(uploaded, slot: str = state.UPLOAD) -> Path:
    """Stream an uploaded file into this session's private folder once and return its path;
    reruns reuse it. The session's uploads that nothing uses any more go, and so do other
    sessions' that are older than the configured age."""
    remembered = st.session_state.get(slot)
    if remembered and remembered[0] == uploaded.file_id and Path(remembered[1]).is_file():
        return Path(remembered[1])
    keep_uploads_fresh()
    uploads.sweep(paths.uploads_root(), uploads.max_age_seconds())
    folder = session_uploads()
    uploaded.seek(0)
    path = uploads.stream_to(folder, uploaded.name, uploaded)
    st.session_state[slot] = (uploaded.file_id, str(path))
    uploads.remove_unused(folder, _uploads_in_use())
    return path


def forget_upload(slot: str = state.UPLOAD) -> None:
    """The uploader is empty: its file goes unless the data or the calendar in use still read it."""
    if st.session_state.pop(slot, None) is not None:
        drop_unused_uploads()


def drop_unused_uploads() -> None:
    """Remove this session's uploads that neither an uploader, the data nor the calendar uses."""
    if state.UPLOAD_FOLDER in st.session_state:
        uploads.remove_unused(session_uploads(), _uploads_in_use())


# ----------------------------------------------------------------------------------------------
# The calendar ahead: uploaded for a data source, or the test.csv of a Kaggle-layout folder.


@dataclass(frozen=True, eq=False)
class CalendarChoice:
    calendar: FutureCalendar
    path: str  # the uploaded file, in this session's upload folder
    name: str  # the file's name as uploaded
    source: object  # the data source it was uploaded for; it applies to that source only


@st.cache_resource(max_entries=4, show_spinner="Reading the calendar…")
def _folder_calendar(key: str, path: str) -> FutureCalendar:
    return read_calendar(path, max_bytes=max_bytes_setting())


def folder_calendar(source) -> tuple[FutureCalendar | None, Path | None]:
    """(the calendar of a Kaggle-layout folder's test.csv(.gz), its path); (None, None) when it has
    none. Raises DataError when the file does not read."""
    path = calendar_file(source)
    if path is None:
        return None, None
    info = path.stat()
    return _folder_calendar(f"{path}|{info.st_size}|{info.st_mtime_ns}", str(path)), path


def current_calendar() -> FutureCalendar | None:
    """The calendar ahead of the data in use: the one uploaded for them on the Data page, else
    their folder's test.csv, else None (also when that file does not read: the Data page says
    why). What forecasts past the data should use."""
    source = state.current_source()
    choice = st.session_state.get(state.CALENDAR)
    if choice is not None and choice.source == source:
        return choice.calendar
    try:
        return folder_calendar(source)[0]
    except (OSError, BhmError):
        return None


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
def fit_usability(fingerprint: str, root: str, key: str, stamp: str, _row: dict, _cube: SalesCube) -> str:
    """ "yes" when the listed fit (_row, a row of FitStore.list) was made on these data (its stores
    of this cube give its fingerprint), else "other data" or "unreadable"
    (bhm_core.artifacts.scope.data_match). Cached per cube and artifact (stamp: the record's
    checksum): the fit history asks for every saved fit on every rerun, and the subsets are hashed
    outside the fit-cube cache, so a long history never evicts the cubes in use."""
    from bhm_core.artifacts import FitStore, scope

    return scope.data_match(FitStore(root), _row, _cube)
