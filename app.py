"""Dashboard entry point: `streamlit run app.py`. Sets up the page and routes to pages/."""

import streamlit as st

from ui import nav, widgets

st.set_page_config(page_title="Sales forecasting", page_icon=":material/insights:", layout="wide")
page = st.navigation(nav.pages())
widgets.sidebar_status()
page.run()
