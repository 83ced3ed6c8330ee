"""Dashboard entry point: `streamlit run app.py`. Sets up the page and routes to pages/."""

import streamlit as st

from ui.session import state, warmup
from ui.views import access, address, nav, status

st.set_page_config(page_title="Sales forecasting", page_icon=":material/insights:", layout="wide")
allowed = access.gate()  # a login or password form instead, until this session may see the pages
page = st.navigation(nav.pages(), position="sidebar" if allowed else "hidden")
st.session_state[state.ROUTED] = True
if not allowed:
    st.stop()
access.account_menu()
address.restore()  # the source, picks and fit a link or a reload names
slot = st.sidebar.empty()
status.sidebar_status(slot)  # drawn first, so it is there even when a page stops early
page.run()
status.sidebar_status(slot)  # and again: the page may have changed the data or the picks
address.publish()
warmup.warm_up()  # once per process, after the first page: JAX loads while the user reads it
