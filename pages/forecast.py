"""Forecast: per-store posterior predictive bands, the total over the fitted stores, one day's
distribution, what-ifs (a promo plan, another fit) and the table with its downloads."""

import streamlit as st

from bhm_core.errors import BhmError
from ui.session import state
from ui.views import forecast as forecast_view
from ui.views import forecast_table, guards, nav, whatif

nav.route_through_app()
st.title("Forecast")
fit, sub = guards.require_fit("the forecast is drawn from the model's posterior.")

request = forecast_view.controls(fit, sub)
st.caption(
    f"Current fit: {fit.summary()}. Days after {sub.dates[-1]} follow the calendar ahead: "
    f"{request['plan_text'] or 'none (no days after the data shown)'}."
)
window = forecast_view.zoom(request)
kind = state.current_source().kind
n_fitted = len(fit.result.store_ids)
tabs = st.tabs(
    [
        "Stores",
        f"Total over the {n_fitted} fitted stores",
        "One store-day",
        "What if: promo days",
        "What if: another fit",
        "Table & CSV",
    ],
    on_change="rerun",
    key="w.fc.tab",
)
sections = (
    lambda: forecast_view.stores_tab(fit, sub, request, window, kind),
    lambda: forecast_view.total_tab(fit, sub, request, window, kind),
    lambda: forecast_view.day_tab(fit, sub, request, window, kind),
    lambda: whatif.promo_tab(fit, sub, request, kind),
    lambda: whatif.fits_tab(fit, sub, request, kind),
    lambda: forecast_table.table_tab(fit, sub, request, forecast_view.shown_frame(fit, sub, request, window), kind),
)
try:
    for tab, section in zip(tabs, sections):
        if tab.open:
            with tab:
                section()
except BhmError as exc:
    st.error(str(exc))
