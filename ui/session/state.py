"""Every session-state key the dashboard uses, and the small functions that read and write them.

Pages never spell a key themselves. Plain data lives under the ``bhm.`` keys and survives page
switches; widget keys (``w.``) belong to one widget and Streamlit drops them when a page without
that widget runs, so a widget that must remember its value across pages is seeded from a ``bhm.``
key and writes back to it (see ``seed_widget`` and ``ui.views.store_picker.store_picker``).
"""

from __future__ import annotations

import os

import streamlit as st

from bhm_core.data.sources import DemoSource

# Plain data, kept for the whole session.
DEFAULT_STORES = 20  # stores a fit takes when none are picked

SOURCE = "bhm.source"  # frozen source dataclass in use: the last one that loaded
SELECTED_STORES = "bhm.selected_stores"  # list[int]: store ids picked on the Stores page
FIT = "bhm.fit"  # ui.session.fits.CurrentFit: the fit the engine pages show
LOADED_FEATURES = "bhm.loaded_features"  # FeatureSpec of the last settings file loaded (Model & fit)
SVI_EXTRA = "bhm.svi_extra"  # FitConfig fields without a widget, as the last settings file gave them
NS_HIERARCHY_STORES = "bhm.ns_hierarchy"  # stores the New stores page's hierarchy rests on, when widened
PREVIOUS_FIT = "bhm.previous_fit"  # key of the saved fit that was current before the current one
FIT_JOB = "bhm.fit_job"  # ui.session.jobs.FitJob: a fit running in the background (or just done)
FIT_NOTICE = "bhm.fit_notice"  # ui.session.lifecycle.Notice about the last fit attempt (Model & fit)
FIT_PARTIAL = "bhm.fit_partial"  # ui.session.fits.CurrentFit of a cancelled or diverged fit, unsaved
UPLOAD = "bhm.upload"  # (uploader file_id, saved path) of the last CSV upload
UPLOAD_FOLDER = "bhm.upload_folder"  # str: this session's private folder under paths.uploads_root()
CALENDAR_UPLOAD = "bhm.calendar_upload"  # (uploader file_id, saved path) of the last calendar upload
# ui.session.loaders.CalendarChoice: the calendar ahead uploaded for a source; read it through
# ui.session.loaders.current_calendar(), which also finds a data folder's own test.csv.
CALENDAR = "bhm.calendar"
CALENDAR_UPLOADER = "bhm.calendar_uploader"  # int: bumped to give the calendar uploader a fresh widget
FIT_CLAIM = "bhm.fit_claim"  # ui.session.in_use.Token: holds this session's claim on its current fit
FIT_DELETE = "bhm.fit_delete"  # key of the saved fit whose deletion waits for a confirmation
ACCESS = "bhm.access"  # True once this session gave the dashboard's password (ui.views.access)
SOURCE_MEMORY = "bhm.source_memory"  # {source: (picks, CurrentFit or None)} of the sources left
URL_NOTICE = "bhm.url_notice"  # why the view of a link could not be restored (ui.session.urls)
ROUTED = "bhm.routed"  # True once app.py has run in this session (ui.views.nav.route_through_app)
# Evaluations (Baselines, New stores pages): the job running for each kind, and the last notice.
# The Evaluations themselves live in a process-wide cache (ui.session.loaders.evaluations), keyed by
# content.
EVAL_JOB = "bhm.eval_job"  # prefix: f"{EVAL_JOB}.{kind}" -> ui.session.jobs.TaskJob
EVAL_NOTICE = "bhm.eval_notice"  # prefix: f"{EVAL_NOTICE}.{kind}" -> ui.session.lifecycle.Notice
EVAL_KINDS = ("backtest", "coldstart")

# Widget keys that other code sets on purpose (buttons that change the picks, tests).
W_SOURCE_KIND = "w.source_kind"
W_STORE_PICKER = "w.store_picker"
W_PRIOR = "w.prior"  # prefix: f"{W_PRIOR}.{group}.{field}" (ui.views.prior_editor)
W_SVI = "w.svi"  # prefix: f"{W_SVI}.{field}" (ui.views.svi_settings)

PROGRESS_EVERY = 25  # steps per chunk of a fit: how often its progress moves and Cancel is checked

# The built-in demo's default size; tests shrink it through the environment.
DEMO_STORES_ENV = "BHM_DEMO_STORES"
DEMO_DAYS_ENV = "BHM_DEMO_DAYS"


def default_demo_source() -> DemoSource:
    """The data a new session starts with. BHM_DEMO_STORES / BHM_DEMO_DAYS override the size."""
    base = DemoSource()
    n_stores = int(os.environ.get(DEMO_STORES_ENV, base.n_stores))
    n_days = int(os.environ.get(DEMO_DAYS_ENV, base.n_days))
    return DemoSource(n_stores=n_stores, n_days=n_days, seed=base.seed)


def current_source():
    if SOURCE not in st.session_state:
        st.session_state[SOURCE] = default_demo_source()
    return st.session_state[SOURCE]


def set_source(source) -> None:
    """Switch the data in use. Picks and fit refer to the old data: they are put aside with it and
    come back when the user switches back to it."""
    old = st.session_state.get(SOURCE)
    if old == source:
        return
    memory = st.session_state.setdefault(SOURCE_MEMORY, {})
    if old is not None:
        memory[old] = (selected_stores(), st.session_state.get(FIT))
    st.session_state[SOURCE] = source
    drop_fit()
    picks, fit = memory.pop(source, ([], None))
    set_selected_stores(picks)
    if fit is not None:
        st.session_state[FIT] = fit


def eval_job_key(kind: str) -> str:
    return f"{EVAL_JOB}.{kind}"


def eval_notice_key(kind: str) -> str:
    return f"{EVAL_NOTICE}.{kind}"


def drop_fit() -> None:
    """Forget the current fit and any fit or evaluation in progress (they refer to data no longer
    in use)."""
    for key in (FIT_JOB, *(eval_job_key(kind) for kind in EVAL_KINDS)):
        job = st.session_state.pop(key, None)
        if job is not None:
            job.cancel()
    for key in (FIT, FIT_NOTICE, FIT_PARTIAL, *(eval_notice_key(kind) for kind in EVAL_KINDS)):
        st.session_state.pop(key, None)


def selected_stores(valid_ids=None) -> list[int]:
    """Picked store ids; with ``valid_ids``, only those that exist there (order kept)."""
    picked = list(st.session_state.get(SELECTED_STORES, []))
    if valid_ids is not None:
        valid = {int(i) for i in valid_ids}
        picked = [i for i in picked if i in valid]
    return picked


def set_selected_stores(ids) -> None:
    """Replace the picks; also moves the picker widget so it shows them on the next run."""
    ids = [int(i) for i in dict.fromkeys(int(i) for i in ids)]
    st.session_state[SELECTED_STORES] = ids
    st.session_state[W_STORE_PICKER] = ids


def seed_widget(widget_key: str, value) -> None:
    """Give a widget its remembered value when it (re)appears, never overriding the user's."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value
