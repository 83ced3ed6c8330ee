"""The address bar and the session: restore the view a link names, then keep the URL in step
(ui.session.urls). app.py calls `restore` before the page and `publish` after it."""

from __future__ import annotations

import streamlit as st

from ui.session import state, urls


def restore() -> None:
    """The link's source, picks and fit, once per session; a restored fit's priors and settings go
    into the editors, as when it is reopened from the saved fits."""
    before = st.session_state.get(state.FIT)
    urls.restore()
    fit = st.session_state.get(state.FIT)
    if fit is not None and fit is not before:
        from ui.views import prior_editor, svi_settings

        prior_editor.load(fit.result.priors)
        svi_settings.load(fit.result.config)
    notice = st.session_state.pop(state.URL_NOTICE, None)
    if notice:
        st.toast(notice, icon=":material/link_off:")


def publish() -> None:
    urls.publish()
