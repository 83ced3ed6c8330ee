"""The dashboard's pages, in menu order. Adding a page is one line in PAGES."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


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
)


def pages() -> list:
    """st.Page objects for st.navigation (needs a running script, hence a function)."""
    return [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES]
