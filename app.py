"""Dashboard entry point: `streamlit run app.py`. Sets up the page and routes to pages/."""

import streamlit as st

from ui import data, nav, widgets

st.set_page_config(page_title="Sales forecasting", page_icon=":material/insights:", layout="wide")
data.compilation_cache()  # once per process: compiled fits survive restarts
page = st.navigation(nav.pages())
status = st.sidebar.empty()
widgets.sidebar_status(status)  # drawn first, so it is there even when a page stops early
page.run()
widgets.sidebar_status(status)  # and again: the page may have changed the data or the picks
