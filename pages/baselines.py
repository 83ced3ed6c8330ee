"""Baselines: backtest the hierarchical model against simple forecasters on held-out days."""

import streamlit as st

from bhm_core.errors import BhmError
from ui.session import evaluations, fits, loaders, state
from ui.views import baselines as baselines_view
from ui.views import evaluation as eval_view
from ui.views import guards, nav

nav.route_through_app()
st.title("Baselines")
cube = loaders.current_cube()
if cube is None:
    st.stop()
evaluations.lifecycle("backtest").collect()  # a run that ended in the background: its notice, then the button
config, priors = guards.model_settings()
if config is None:
    st.stop()

store_ids, by_default = fits.stores_to_fit(cube)
which = (
    f"the first {len(store_ids)} stores (none picked on the Stores page)"
    if by_default
    else f"the {len(store_ids)} stores picked on the Stores page"
)
st.caption(
    f"Backtest on {which}: the model (with the priors and settings of Model & fit: "
    f"{config.steps:,} steps, learning rate {config.learning_rate:g}) and every baseline learn "
    "from the days up to the cutoff and forecast the horizon after it; the forecasts are "
    "scored against the recorded sales."
)

request = baselines_view.controls(cube)
key = (
    None
    if request is None
    else evaluations.backtest_key(cube, store_ids, request["cutoff"], request["horizon"], config, priors)
)
evaluation = eval_view.run(
    "backtest",
    f"Run the backtest ({len(store_ids)} stores)",
    request is not None,
    key,
    lambda: evaluations.start_backtest(cube, store_ids, request["cutoff"], request["horizon"], config, priors),
    "Run the backtest to compare the model with the baselines on these days.",
)

try:
    baselines_view.results(evaluation, cube, state.current_source().kind, key)
except BhmError as exc:
    st.error(str(exc))
