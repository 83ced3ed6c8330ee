"""Streamlit-aware code of the dashboard, in three layers (pages use all three; bhm_core none):

- ui.session: session-state keys and accessors, background jobs and their one lifecycle (the
  current fit, evaluations), cached loaders of data and results.
- ui.views: widgets and page sections, drawn with st.* calls; they read and change the session.
- ui.charts: pure figure builders (tidy frame in, Plotly figure out), no Streamlit.

A layer imports only those after it in this list: views -> session -> charts, never back.
Only this package and pages/ import streamlit; bhm_core stays UI-free.
"""
