"""Forecast: per-store posterior predictive bands, the total over the fitted stores, one day's
distribution, and a what-if on future promotions."""

import streamlit as st

from bhm_core.errors import BhmError
from ui.session import state
from ui.views import forecast as forecast_view
from ui.views import guards, nav

nav.route_through_app()
st.title("Forecast")
fit, sub = guards.require_fit("the forecast is drawn from the model's posterior.")

st.caption(
    f"Current fit: {fit.summary()}. Days after {sub.dates[-1]} are forecast from the "
    "calendar (weekday, the promo scenario below; no known holidays)."
)
request = forecast_view.controls(fit, sub)
window = forecast_view.zoom(request)
kind = state.current_source().kind
n_fitted = len(fit.result.store_ids)
tabs = st.tabs(
    ["Stores", f"Total over the {n_fitted} fitted stores", "One store-day", "Table & CSV"],
    on_change="rerun",
    key="w.fc.tab",
)
try:
    if tabs[0].open:
        with tabs[0]:
            forecast_view.stores_tab(fit, sub, request, window, kind)
    if tabs[1].open:
        with tabs[1]:
            forecast_view.total_tab(fit, sub, request, window, kind)
    if tabs[2].open:
        with tabs[2]:
            forecast_view.day_tab(fit, sub, request, window, kind)
    if tabs[3].open:
        with tabs[3]:
            forecast_view.table_tab(forecast_view.shown_frame(fit, sub, request, window))
except BhmError as exc:
    st.error(str(exc))
