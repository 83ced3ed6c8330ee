"""Stores: filter the chain, pick stores (kept across pages), look at their sales history."""

import streamlit as st

from ui.session import loaders, state
from ui.views import nav, store_picker

nav.route_through_app()
st.title("Stores")
cube = loaders.current_cube()
if cube is None:
    st.stop()

kind = state.current_source().kind
table = loaders.store_table(cube.fingerprint, cube)
st.caption(f"{state.current_source().label}: filter the stores, then pick some to work with.")

filtered = store_picker.store_filters(table, cube.fingerprint, kind)
st.caption(f"{len(filtered):,} of {len(table):,} stores match. Select rows to add them to the picks.")
table_selection = store_picker.store_table(filtered, kind)
store_picker.pick_actions(filtered["Store"].tolist(), table_selection)

picks = store_picker.store_picker(cube.store_ids.tolist())
st.subheader("Sales history of the picked stores")
store_picker.history_panel(cube, picks, kind)
