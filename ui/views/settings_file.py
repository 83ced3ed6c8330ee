"""Settings as a file on the Model & fit page: download the priors and SVI settings as TOML
(bhm_core.model.settings), load such a file into the editors with the library's validation (a
refused value is named by its widget's label), and put a fit's posterior into the prior editors.

A file is read in the uploader's callback, before the editors are drawn, so the loaded values are
what the widgets show on that very run."""

from __future__ import annotations

import streamlit as st

from bhm_core.errors import BhmError, ConfigError
from bhm_core.model.settings import Settings, from_toml, to_toml
from ui.session import fits, state
from ui.views import labels, prior_editor, svi_settings

UPLOAD_KEY = "w.settings_file"
NOTE = "bhm.settings_note"  # (kind, text) about the last file or posterior loaded


def _settings(cube) -> Settings | None:
    try:
        return Settings(svi_settings.current_config(), prior_editor.current_priors(), cube.spec)
    except ConfigError:
        return None


TEXT_KEY = "w.settings_text"


def _load_file() -> None:
    uploaded = st.session_state.get(UPLOAD_KEY)
    if uploaded is None:
        return
    try:
        text = uploaded.getvalue().decode("utf-8")
    except UnicodeDecodeError:
        st.session_state[NOTE] = ("error", f"{uploaded.name}: not a text file")
        return
    _load(text, uploaded.name)


def _load_text() -> None:
    _load(st.session_state.get(TEXT_KEY) or "", "the pasted settings")


def _load(text: str, name: str) -> None:
    """Validate the whole file first; only a valid one reaches the editors."""
    try:
        loaded = from_toml(text, name)
    except ConfigError as exc:
        label = labels.label_of(exc.key)
        message = str(exc) if label is None else f"{name}: {labels.message(exc)}"
        st.session_state[NOTE] = ("error", message + ". Nothing was loaded.")
        return
    svi_settings.load(loaded.fit)
    prior_editor.load(loaded.priors)
    st.session_state[state.LOADED_FEATURES] = loaded.features
    st.session_state[NOTE] = ("success", f"Loaded {name} into the editors.")


def _posterior_as_priors() -> None:
    fit = fits.current()
    if fit is None:
        return
    from bhm_core.inference.coldstart import priors_from_posterior

    try:
        prior_editor.load(priors_from_posterior(fit.result, inflate=2.0))
    except BhmError as exc:
        st.session_state[NOTE] = ("error", f"The posterior cannot be used as priors: {exc}")
        return
    st.session_state[NOTE] = (
        "success",
        f"The prior editors now hold fit {fit.key[:12]}'s posterior, its scales widened ×2 (a new fit "
        "with them learns from that fit as if it were prior knowledge).",
    )


def section(cube) -> None:
    row = st.container(horizontal=True, vertical_alignment="bottom")
    settings = _settings(cube)
    row.download_button(
        "Download the settings (TOML)",
        to_toml(settings) if settings is not None else "",
        "bhm-settings.toml",
        "application/toml",
        disabled=settings is None,
        on_click="ignore",
        icon=":material/download:",
        help="The priors, SVI settings and feature groups, for `python -m bhm_core ... --config FILE`"
        if settings is not None
        else "Fix the settings marked below first",
        key="fit.settings_download",
    )
    current = fits.current()
    row.button(
        "Use this fit's posterior as priors",
        on_click=_posterior_as_priors,
        disabled=current is None,
        icon=":material/history_edu:",
        help="Each feature group's prior centred on the current fit's posterior, its scales ×2"
        if current is not None
        else "Needs a current fit",
        key="fit.posterior_priors",
    )
    left, right = st.columns(2, gap="large")
    left.file_uploader(
        "Load settings from a TOML file",
        type=["toml"],
        key=UPLOAD_KEY,
        on_change=_load_file,
        help="The same file the download writes (any key may be left out: it keeps its default)",
    )
    right.text_area("…or paste them", key=TEXT_KEY, height=100, placeholder="[fit]\nsteps = 200")
    right.button("Load the pasted settings", on_click=_load_text, key="fit.settings_paste")
    _note(cube)
    if settings is not None:
        st.caption("The settings in the editors now, as the file holds them:")
        st.code(to_toml(settings), language="toml")


def _note(cube) -> None:
    note = st.session_state.get(NOTE)
    if note is not None:
        (st.success if note[0] == "success" else st.error)(note[1])
    loaded = st.session_state.get(state.LOADED_FEATURES)
    if loaded is not None and loaded != cube.spec:
        st.warning(
            "The file's feature groups differ from those of the data in use; the dashboard fits with the "
            "data's feature groups (the command line takes the file's)."
        )
