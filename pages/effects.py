"""Effects: what the fit learned about weekdays, promotions and holidays, chain-wide and per store,
and how the hierarchy pulls stores with little data toward the chain."""

import streamlit as st

from bhm_core.errors import BhmError
from ui.session import fit_results, loaders, state
from ui.views import effects as effects_view
from ui.views import fit_history, guards, nav

nav.route_through_app()
st.title("Effects")
fit, sub = guards.require_fit("the effects are summaries of a fitted posterior.")

st.caption(
    f"Current fit: {fit.summary()}. Effects multiply expected sales: ×1.2 is +20 %, ×0.8 is "
    "−20 %. Weekdays are relative to Monday, holidays to ordinary days, store variants to "
    "the average variant."
)
try:
    seen = fit_results.seen_features(sub.fingerprint, sub)
    tables = fit_results.effect_tables(fit.key, seen, fit.result, sub)
    chosen = effects_view.choose_effects(tables)
    if not chosen:
        st.info("Choose at least one feature group.", icon=":material/arrow_upward:")
        st.stop()
    source = state.current_source()
    truth = loaders.truth(source)
    if truth is not None:
        truth = fit_results.truth_tables(fit.key, seen, loaders.source_key(source), fit.result, truth, sub)

    st.subheader("Chain-wide effects")
    overlay = effects_view.overlay_choice(fit, fit_history.saved_keys(), seen)
    st.caption(
        "Posterior densities of exp(θ_μ), the effect for a typical store of the chain, one chart per "
        "feature group." + effects_view.truth_caption(truth, chosen)
    )
    effects_view.densities(tables, fit, overlay, chosen, truth)

    st.subheader("Store by store")
    st.caption("Each dot is one store's posterior mean effect; the diamond is the chain's.")
    effects_view.per_store(tables, chosen, fit.key)

    st.subheader("Shrinkage: a store's own estimate vs the hierarchical one")
    effects_view.shrinkage(tables, chosen, fit.key, truth)
except BhmError as exc:
    st.error(str(exc))
