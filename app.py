"""Dashboard entry point: `streamlit run app.py`. Sets up the page and routes to pages/."""

import streamlit as st

from ui import data, nav, state, widgets

st.set_page_config(page_title="Sales forecasting", page_icon=":material/insights:", layout="wide")
page = st.navigation(nav.pages())
st.session_state[state.ROUTED] = True
status = st.sidebar.empty()
widgets.sidebar_status(status)  # drawn first, so it is there even when a page stops early
page.run()
widgets.sidebar_status(status)  # and again: the page may have changed the data or the picks
data.warm_up()  # once per process, after the first page: JAX loads while the user reads it
