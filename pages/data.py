"""Data (home): choose the sales data, see what it holds and where it has gaps."""

import streamlit as st

from ui import charts, data, nav, source_forms, state, widgets

nav.route_through_app()
st.title("Data")
st.caption("Choose the sales data to work with. Every other page uses the data chosen here.")

with st.container(border=True):
    source_forms.choose_source()

cube = data.current_cube()
if cube is None:
    st.stop()

st.subheader(f"In use: {state.current_source().label}")
widgets.dataset_summary(cube)

st.subheader("Coverage by store and day")
grid = data.cached_status_grid(cube.fingerprint, cube)
st.plotly_chart(charts.missingness_figure(grid), width="stretch", config={"displaylogo": False})
if grid["days_per_cell"] > 1 or grid["stores_per_cell"] > 1:
    st.caption(
        f"Each cell is {grid['stores_per_cell']} store(s) × {grid['days_per_cell']} days "
        "and shows the status most of its days have."
    )
