"""Data (home): choose the sales data, see what it holds and where it has gaps."""

import streamlit as st

from ui.charts import sales
from ui.session import loaders, state
from ui.views import nav, source_forms, status

nav.route_through_app()
loaders.sweep_uploads_at_start()
st.title("Data")
st.caption("Choose the sales data to work with. Every other page uses the data chosen here.")

with st.container(border=True):
    source_forms.choose_source()

cube = loaders.current_cube()
if cube is None:
    st.stop()

st.subheader(f"In use: {state.current_source().label}")
status.dataset_summary(cube)

st.subheader("Calendar ahead")
with st.container(border=True):
    source_forms.calendar_ahead(cube)

st.subheader("Coverage by store and day")
grid = loaders.status_grid(cube.fingerprint, cube)
st.plotly_chart(sales.missingness_figure(grid), width="stretch", config={"displaylogo": False})
if grid["days_per_cell"] > 1 or grid["stores_per_cell"] > 1:
    st.caption(
        f"Each cell is {grid['stores_per_cell']} store(s) × {grid['days_per_cell']} days "
        "and shows the status most of its days have."
    )
