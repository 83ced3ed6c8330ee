"""Stores: filter the chain, pick stores (kept across pages), look at their sales history."""

import streamlit as st

from ui import data, nav, state, widgets

nav.route_through_app()
st.title("Stores")
cube = data.current_cube()
if cube is None:
    st.stop()

kind = state.current_source().kind
table = data.store_table(cube.fingerprint, cube)
st.caption(f"{state.current_source().label}: filter the stores, then pick some to work with.")

filtered = widgets.store_filters(table, cube.fingerprint, kind)
st.caption(f"{len(filtered):,} of {len(table):,} stores match. Select rows to add them to the picks.")
table_selection = widgets.store_table(filtered, kind)
widgets.pick_actions(filtered["Store"].tolist(), table_selection)

picks = widgets.store_picker(cube.store_ids.tolist())
st.subheader("Sales history of the picked stores")
widgets.history_panel(cube, picks, kind)
