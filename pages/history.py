"""History: the fits folder's current fit, the lineage of the fit in use, how its forecast of the
coming weeks moved from another fit's, and the drift monitor."""

import streamlit as st

from ui.views import guards, nav
from ui.views import history as history_view

nav.route_through_app()
st.title("History")
fit, sub = guards.require_fit("the history is that of a fit.")
cube = sub
history_view.pointer(fit, cube)
st.subheader("Lineage")
chain = history_view.lineage(fit)
st.subheader("How the forecast moved")
history_view.movement(fit, cube, chain)
st.subheader("Monitor")
history_view.monitor(fit, cube)
