"""Model & fit: priors (with what they imply), SVI settings, fitting with live progress, saved fits."""

import streamlit as st

from ui.session import fits, loaders, state
from ui.views import fit_history, fit_runner, nav, prior_editor, settings_file, svi_settings

nav.route_through_app()
st.title("Model & fit")
cube = loaders.current_cube()
if cube is None:
    st.stop()

fits.current()  # collects a fit that ended in the background, drops one of data that changed (with a notice)
store_ids, by_default = fits.stores_to_fit(cube)
sub = loaders.fit_cube(cube, store_ids)
if by_default:
    st.info(
        f"No stores picked: the fit uses the first {len(store_ids)} stores. Pick stores on the "
        "Stores page to fit those instead.",
        icon=":material/storefront:",
    )
    st.page_link("pages/stores.py", label="Pick stores", icon=":material/storefront:")
else:
    st.caption(
        f"Fitting the {len(store_ids)} stores picked on the Stores page "
        f"({int(sub.observed.sum()):,} observed store-days) of {state.current_source().label}."
    )

with st.expander("Settings file: download, load, or start from a fit's posterior", icon=":material/description:"):
    settings_file.section(sub)

st.subheader("Priors")
left, right = st.columns([1.1, 1], gap="large")
with left:
    st.caption(
        "Each feature group has a chain-wide mean effect θ_μ and a store-to-store spread θ_σ, "
        "on the log scale of sales. Open a group to change its prior and see what it implies."
    )
    priors = prior_editor.editors(sub)
with right:
    st.markdown("**Prior predictive check**: what daily sales the priors expect, before any fit")
    if priors is not None:
        prior_editor.predictive_check(sub, priors, state.current_source().kind)
    else:
        st.caption("Shown once the priors are valid.")

st.subheader("Inference (SVI)")
with st.container(border=True):
    config = svi_settings.settings(len(store_ids))

fit_runner.fit_button(cube, store_ids, config, priors)
fit_runner.progress()
fit_runner.notice()
fit_runner.current_fit(fits.current())

st.subheader("Saved fits")
saved = fit_history.table(cube, fits.current())
with st.expander("Compare two fits"):
    fit_history.compare(cube, fits.current(), saved)
