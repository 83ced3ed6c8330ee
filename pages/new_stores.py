"""New stores: forecast stores from their first few days, borrowing strength from the hierarchy,
and compare with baselines that only have those days."""

import streamlit as st

from bhm_core.errors import BhmError
from ui.session import evaluations, loaders, state
from ui.views import evaluation as eval_view
from ui.views import guards, nav
from ui.views import new_stores as new_stores_view

nav.route_through_app()
st.title("New stores")
cube = loaders.current_cube()
if cube is None:
    st.stop()
evaluations.lifecycle("coldstart").collect()  # a run that ended in the background: its notice, then the button
config, priors = guards.model_settings()
if config is None:
    st.stop()
st.caption(
    "Treat stores of the data as new: each keeps only its first K days with sales. Their own "
    "parameters are fitted on those days with the chain's posterior frozen, then they are "
    "forecast for the following days and scored against what they really sold, next to "
    "per-store baselines trained on the same K days."
)

request = new_stores_view.controls(cube)
key = None
if request is not None:
    reuse, others = evaluations.hierarchy_plan(cube, request["new"])
    new_stores_view.hierarchy_caption(reuse, others)
    new_stores_view.pooling_warning(cube, request["new"], others)
    h_key = evaluations.hierarchy_key(cube, reuse, others, config, priors)
    key = evaluations.coldstart_key(cube, request["new"], request["known"], request["horizon"], h_key, config)
evaluation = eval_view.run(
    "coldstart",
    "Fit and forecast the new stores",
    request is not None,
    key,
    lambda: evaluations.start_coldstart(cube, request["new"], request["known"], request["horizon"], config, priors),
    "Press the button to fit the new stores and compare the forecasts.",
)

try:
    new_stores_view.results(evaluation, cube, state.current_source().kind, request["windows"], key)
except BhmError as exc:
    st.error(str(exc))
