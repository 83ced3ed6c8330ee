"""The dashboard's pages, in menu order. Adding a page is one line in PAGES."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ui.session import state
from ui.views import access


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py
    title: str
    icon: str
    default: bool = False


PAGES = (
    PageSpec("pages/data.py", "Data", ":material/database:", default=True),
    PageSpec("pages/stores.py", "Stores", ":material/storefront:"),
    PageSpec("pages/fit.py", "Model & fit", ":material/tune:"),
    PageSpec("pages/forecast.py", "Forecast", ":material/trending_up:"),
    PageSpec("pages/effects.py", "Effects", ":material/bar_chart:"),
    PageSpec("pages/baselines.py", "Baselines", ":material/leaderboard:"),
    PageSpec("pages/new_stores.py", "New stores", ":material/add_business:"),
    PageSpec("pages/history.py", "History", ":material/history:"),
)


def pages() -> list:
    """st.Page objects for st.navigation (needs a running script, hence a function)."""
    return [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES]


def route_through_app() -> None:
    """Send a session's first page run back through app.py when it bypassed it.

    Until app.py has called st.navigation once in this server process, Streamlit treats pages/ as
    a classic multipage folder: a deep link (/forecast) opened first on a fresh server runs
    pages/forecast.py on its own, so the sidebar lists file names and app.py's setup and status
    never run, for that session and every deep link after it. Calling st.navigation switches
    Streamlit to our navigation for the process; the rerun then goes through app.py, to the same
    page. Only a session app.py has not yet run in is rerouted: its first run holds no widget
    event that the rerun would drop. (AppTest resets Streamlit's flag before every run and runs a
    page on its own after the app's first run; those runs are left as they are.) Every page calls
    this first.

    A session that has not passed the login or password gate (ui.views.access) gets its form
    here instead of the page, however the page came to run (app.py asks first; AppTest runs
    pages on their own).
    """
    from streamlit.runtime.pages_manager import PagesManager  # the flag Streamlit itself checks

    if getattr(PagesManager, "uses_pages_directory", False) and not st.session_state.get(state.ROUTED):
        st.navigation(pages(), position="hidden")
        st.rerun()
    if not access.gate():
        st.stop()
