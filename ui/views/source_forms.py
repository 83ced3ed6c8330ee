"""The Data page's source choice: one small form per kind of source.

Each form returns a new source when the user asks to load it, else None; `choose_source` then
tries it and only a source that loads replaces the one in use.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import streamlit as st

from bhm_core import paths
from bhm_core.data import kaggle, kaggle_auth
from bhm_core.data.future import read_calendar
from bhm_core.data.sources import (
    MAPPABLE_COLUMNS,
    CsvSource,
    DemoSource,
    KaggleDirSource,
    folder_within,
    max_bytes_setting,
    sniff_header,
)
from bhm_core.data.validate import TRAIN_REQUIRED
from bhm_core.errors import DataError
from ui.session import loaders, state

KINDS = {"demo": "Built-in demo", "kaggle": "Kaggle download", "folder": "Local folder", "csv": "CSV upload"}
KIND_OF_SOURCE = {"demo": "demo", "kaggle-dir": "folder", "csv": "csv"}
NOT_MAPPED = "(not in the file)"
RAW_HINT = "raw/rossmann"  # the managed Rossmann download, relative to the data root


def choose_source() -> None:
    current = state.current_source()
    state.seed_widget(state.W_SOURCE_KIND, KIND_OF_SOURCE.get(current.kind, "demo"))
    kind = st.segmented_control(
        "Data source", list(KINDS), format_func=KINDS.get, required=True, key=state.W_SOURCE_KIND
    )
    candidate = {"demo": _demo, "kaggle": _kaggle, "folder": _folder, "csv": _csv}[kind](current)
    if candidate is not None and loaders.try_source(candidate):
        st.success(f"Now using {candidate.label}.")


def _demo(current):
    st.info(
        "**Synthetic demo data.** A seeded retail chain drawn from the model itself, in the "
        "Rossmann layout: not real sales. Its true parameters are known, so fits can be "
        "checked against them.",
        icon=":material/science:",
    )
    base = current if isinstance(current, DemoSource) else state.default_demo_source()
    left, middle, right = st.columns(3)
    n_stores = left.number_input("Stores", 1, 5000, base.n_stores, step=10, key="w.demo_stores")
    n_days = middle.number_input("Days", 7, 2000, base.n_days, step=7, key="w.demo_days")
    seed = right.number_input("Seed", 0, 2**31 - 1, base.seed, key="w.demo_seed")
    if st.button("Use demo data", type="primary"):
        return DemoSource(n_stores=int(n_stores), n_days=int(n_days), seed=int(seed))
    return None


def _kaggle(current):
    status = kaggle_auth.credential_status()
    (st.success if status.found else st.warning)(status.summary)
    names = list(kaggle.MANAGED_DATASETS)
    name = st.selectbox(
        "Data set",
        names,
        key="w.kaggle_dataset",
        format_func=lambda n: f"{kaggle.MANAGED_DATASETS[n].title} (into data/raw/{n})",
        help="Each data set has its own folder under data/raw/; a new download "
        "replaces only that folder, and only once the new copy checks out",
    )
    dataset = kaggle.managed_dataset(name)
    dest = kaggle.managed_dir(name, paths.raw_root())
    have_copy = (dest / "train.csv").is_file() and (dest / "store.csv").is_file()
    row = st.container(horizontal=True)
    download = row.button(
        "Download from Kaggle",
        type="primary",
        disabled=not status.found,
        help=f"Data set {dataset.slug}, about 40 MB"
        if status.found
        else "No Kaggle credentials on the server (see above)",
    )
    use_copy = row.button(
        "Use the downloaded copy", disabled=not have_copy, help=None if have_copy else "Not downloaded yet"
    )
    if download:
        with st.status(f"Downloading {dataset.title}…", expanded=True) as box:
            try:
                kaggle.download_dataset(name, paths.raw_root(), on_progress=box.write)
            except DataError as exc:
                box.update(label="Download failed", state="error", expanded=False)
                st.error(str(exc))
                return None
            box.update(label="Download complete", state="complete", expanded=False)
    return KaggleDirSource(str(dest)) if download or use_copy else None


def _folder(current):
    roots = paths.folder_roots()
    default = current.path if isinstance(current, KaggleDirSource) else RAW_HINT
    text = st.text_input(
        "Folder with train.csv (or train.csv.gz) and store.csv",
        default,
        key="w.folder_path",
        help=f"Kaggle Rossmann layout; relative paths start at the data folder {paths.data_root()}",
    )
    st.caption(
        "The dashboard reads folders under "
        + ", ".join(f"`{root}`" for root in roots)
        + f" only (the server's {paths.DATA_ROOT_ENV} and {paths.FOLDER_ROOTS_ENV} settings)."
    )
    if st.button("Load folder", type="primary"):
        if not text.strip():
            st.error("Enter the path of a folder that holds train.csv and store.csv.")
            return None
        try:
            return KaggleDirSource(str(folder_within(_absolute(text), roots)))
        except DataError as exc:
            st.error(str(exc))
    return None


def _csv(current):
    uploaded = st.file_uploader(
        "Long-format CSV: one row per store and day (.csv or .csv.gz)", type=["csv", "gz"], key="w.csv_upload"
    )
    if uploaded is None:
        loaders.forget_upload()
        st.caption(
            f"Required: {', '.join(TRAIN_REQUIRED)}. Optional: "
            f"{', '.join(c for c in MAPPABLE_COLUMNS if c not in TRAIN_REQUIRED)}. "
            "The file is kept in a folder of this session only, and removed once no longer used."
        )
        return None
    path = loaders.save_upload(uploaded)
    try:
        header = sniff_header(path)
    except DataError as exc:
        st.error(str(exc))
        return None
    mapping = _column_mapping(header, key=path.parent.name)
    missing = [f for f in TRAIN_REQUIRED if f not in mapping]
    if missing:
        st.error(
            f"{uploaded.name}: choose the file's column for the required field(s) "
            f"{', '.join(missing)}; the file has the columns {header}."
        )
    if st.button("Load CSV", type="primary", disabled=bool(missing)):
        return CsvSource(str(path), columns=tuple(sorted(mapping.items())))
    return None


def calendar_ahead(cube) -> None:
    """The calendar ahead of the data in use (open days, promos, holidays after the data): the
    data folder's own test.csv, or a file in that layout uploaded here, which then takes its place."""
    source = state.current_source()
    choice = st.session_state.get(state.CALENDAR)
    uploaded_here = choice is not None and choice.source == source
    try:
        folder_calendar, folder_path = loaders.folder_calendar(source)
    except (OSError, DataError) as exc:
        folder_calendar, folder_path = None, None
        st.error(f"The data folder's calendar ahead cannot be used: {exc}")
    if uploaded_here:
        st.success(f"Calendar ahead in use: {choice.name} (uploaded). {_calendar_text(choice.calendar, cube)}")
        st.button("Stop using the uploaded calendar", on_click=_drop_calendar, key="w.calendar_drop")
    elif folder_calendar is not None:
        st.info(
            f"Calendar ahead in use: this folder's {folder_path.name}. {_calendar_text(folder_calendar, cube)}",
            icon=":material/event:",
        )
    else:
        st.caption(
            "No calendar ahead for these data: forecasts past their last day fall back on defaults "
            "(no promo, closed on each store's usual closing days). Upload one to say what is planned."
        )
    uploaded = st.file_uploader(
        "Upload a calendar ahead (.csv or .csv.gz in Kaggle's test.csv layout)",
        type=["csv", "gz"],
        # One uploader per data source: a calendar uploaded for other data is not handed to these.
        key=f"w.calendar_upload.{abs(hash(source))}.{st.session_state.get(state.CALENDAR_UPLOADER, 0)}",
        help="Columns Store, Date and any of Open, Promo, StateHoliday, SchoolHoliday (blank: not known); "
        "forecasts past the data take the known days from it. It replaces the folder's own test.csv.",
    )
    if uploaded is None:
        loaders.forget_upload(state.CALENDAR_UPLOAD)
        return
    path = loaders.save_upload(uploaded, state.CALENDAR_UPLOAD)
    if uploaded_here and choice.path == str(path):
        return
    try:
        calendar = read_calendar(path, max_bytes=max_bytes_setting())
    except DataError as exc:
        st.error(str(exc))
        return
    st.session_state[state.CALENDAR] = loaders.CalendarChoice(calendar, str(path), uploaded.name, source)
    st.rerun()  # draw the section again with the new calendar in use


def _drop_calendar() -> None:
    st.session_state.pop(state.CALENDAR, None)
    # A new key gives an empty uploader: the old one would hand its file straight back.
    st.session_state[state.CALENDAR_UPLOADER] = st.session_state.get(state.CALENDAR_UPLOADER, 0) + 1


def _calendar_text(calendar, cube) -> str:
    dates = calendar.dates
    text = f"{len(calendar.store_ids):,} stores, {dates[0]} to {dates[-1]}."
    unknown = np.setdiff1d(calendar.store_ids, cube.store_ids)
    if unknown.size:
        text += f" {unknown.size:,} of its stores are not in the data (e.g. {unknown[0]}); their rows are not used."
    if dates[-1] <= cube.dates[-1]:
        text += (
            f" It ends on or before the data's last day ({cube.dates[-1]}): forecasts past the data "
            "get nothing from it."
        )
    return text


def _column_mapping(header: list[str], key: str) -> dict[str, str]:
    """One selectbox per field of ours, preset to the file's column of the same name."""
    st.markdown("**Column mapping** (our field ← the file's column)")
    by_norm = {_norm(c): c for c in header}
    mapping = {}
    cells = st.columns(5)
    for i, field in enumerate(MAPPABLE_COLUMNS):
        options = [NOT_MAPPED, *header]
        guess = by_norm.get(_norm(field), NOT_MAPPED)
        label = f"{field} *" if field in TRAIN_REQUIRED else field
        chosen = cells[i % 5].selectbox(label, options, index=options.index(guess), key=f"w.map.{key}.{field}")
        if chosen != NOT_MAPPED:
            mapping[field] = chosen
    return mapping


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _absolute(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else paths.data_root() / path
