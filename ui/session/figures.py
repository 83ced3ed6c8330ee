"""Figures built once per process and shared read-only: rebuilding a many-panel Plotly figure on
every rerun costs more than the rest of the page. Each key names everything a figure shows."""

from __future__ import annotations

import streamlit as st

from ui.charts import fit as fit_charts


@st.cache_resource(max_entries=256, show_spinner=False)
def prior_figure(mu_loc: float, mu_scale: float, sigma_scale: float, mean_title: str, spread_title: str):
    """The density panels of one prior. Model & fit draws seven on every rerun and a Plotly figure
    takes tens of ms to build, so each is built once per process and values (never mutated)."""
    from bhm_core.forecast import prior_check

    return fit_charts.prior_figure(
        prior_check.mean_curve(mu_loc, mu_scale), prior_check.spread_curve(sigma_scale), mean_title, spread_title
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def figure(key: str, _build):
    """A figure built once per key, where the key names everything it shows (fit key, request,
    window, theme-independent options). Figures are shared read-only."""
    return _build()
