"""Streamlit-aware helpers of the dashboard: session state, cached data, widgets, charts, pages.

Only this package and pages/ import streamlit; bhm_core stays UI-free.
"""
