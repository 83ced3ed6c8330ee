"""History page sections: which fit is current for the fits folder, the lineage of the fit in
use, how its forecast of the coming weeks moved from another fit's, and the drift monitor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.errors import BhmError
from ui.charts import history as charts
from ui.charts.style import sales_axis_label
from ui.session import fits, state
from ui.session import history as cached

MOVEMENT_WEEKS = 6


def pointer(fit, cube) -> None:
    """The fits folder's current fit (what `serve --fit current` answers with and `retrain`
    replaces) against the fit in use, with the buttons to align them."""
    store = fits.fit_store()
    current = store.current_key()
    ours = fit.key if fit.saved else None
    if current == ours:
        st.success(f"The fit in use, `{fit.key[:12]}`, is the fits folder's current fit (the one served).")
        return
    where = f"`{current[:12]}`" if current else "none"
    st.info(f"The fits folder's current fit (served by `serve --fit current`, replaced by `retrain`): {where}.")
    left, right = st.columns(2)
    if ours is not None:
        left.button("Make the fit in use current", on_click=fits.make_pointer, args=(ours,), key="w.hist.point")
    if current and current in fits.saved_fits(cube)["key"].tolist():
        right.button("Open the current fit", on_click=fits.reopen, args=(current,), key="w.hist.open")


def lineage(fit) -> pd.DataFrame:
    if not fit.saved:
        st.caption("The fit in use is not saved (a partial fit): it has no lineage yet.")
        return pd.DataFrame()
    chain = cached.chain(fit.key)
    st.plotly_chart(charts.lineage_figure(chain), width="stretch", key="hist.lineage")
    table = chain.assign(
        fit=chain["fit"].str[:12],
        parent=chain["parent"].fillna("").str[:12],
        coverage_50=chain["coverage_50"] * 100,
        coverage_90=chain["coverage_90"] * 100,
    )[["fit", "created", "label", "how", "parent", "rmspe", "coverage_50", "coverage_90"]]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "fit": "Fit",
            "created": "Made",
            "label": "Label",
            "how": "From its parent",
            "parent": "Parent",
            "rmspe": st.column_config.NumberColumn("Holdout RMSPE", format="%.4f", help="scored by retrain's gate"),
            "coverage_50": st.column_config.NumberColumn("50 % covered", format="%.1f %%"),
            "coverage_90": st.column_config.NumberColumn("90 % covered", format="%.1f %%"),
        },
    )
    return chain


def _candidates(fit, cube, chain: pd.DataFrame) -> list[str]:
    """The fit's saved parents first (the previous fit of a retrain chain), then the other fits of
    these data."""
    parents = [k for k, gone in zip(chain.get("fit", ()), chain.get("missing", ())) if k != fit.key and not gone]
    others = [k for k in fits.saved_fits(cube)["key"].tolist() if k != fit.key]
    return list(dict.fromkeys([*parents, *others]))


def movement(fit, cube, chain: pd.DataFrame) -> None:
    candidates = _candidates(fit, cube, chain)
    if not candidates:
        st.caption("No other saved fit to compare with: fit again (other settings, or after new days) or retrain.")
        return
    labels = {k: f"{k[:12]} · {fits.fit_store().record(k).get('label', '')}" for k in candidates}
    left, middle, right = st.columns([3, 2, 2])
    other = left.selectbox("Compare with", candidates, format_func=labels.get, key="w.hist.other")
    stores = [int(s) for s in np.asarray(fit.result.store_ids)]
    store = middle.selectbox("Store", stores, key="w.hist.store")
    weeks = right.slider("Weeks ahead", 1, 12, MOVEMENT_WEEKS, key="w.hist.weeks")
    first = cube.dates[-1] + np.timedelta64(1, "D")
    last = cube.dates[-1] + np.timedelta64(7 * weeks, "D")
    try:
        one, total = cached.movement((other, fit.key), cube.fingerprint, store, first, last, cube)
    except BhmError as exc:
        st.warning(f"These two fits cannot be compared on the data in use: {exc}")
        return
    names = (other[:12], fit.key[:12])
    unit = sales_axis_label(state.current_source().kind)
    st.caption(_moved_words(total, names))
    st.plotly_chart(charts.movement_figure(one, names, unit, f"Store {store}"), width="stretch", key="hist.store_chart")
    title = "Daily total over the stores both fits cover"
    st.plotly_chart(charts.movement_figure(total, names, unit, title), width="stretch", key="hist.total_chart")


def _moved_words(total: pd.DataFrame, names: tuple[str, str]) -> str:
    before = total.loc[total["fit"] == names[0], "point"].sum()
    after = total.loc[total["fit"] == names[1], "point"].sum()
    if not before or not math.isfinite(before):
        return ""
    return (
        f"Over these weeks the fit in use forecasts {100 * (after / before - 1):+.1f} % of the total that "
        f"`{names[0]}` forecasts."
    )


def monitor(fit, cube) -> None:
    """Drift of the fit in use on the data in use, on request (a forecast of the recent days)."""
    most = int(cube.n_days)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    recent = left.number_input(
        "Recent days to check", min_value=7, max_value=most, value=min(56, most), step=7, key="w.hist.recent"
    )
    if not right.toggle("Check the recent days", key="w.hist.drift"):
        st.caption(
            "Compares each store's recent days with the fit's predictive distribution, re-estimates the "
            "chain-wide effects on them, and lists inputs that changed."
        )
        return
    try:
        found = cached.drift(fit.key, cube.fingerprint, int(recent), fit.result, cube)
    except BhmError as exc:
        st.error(f"Recent days to check: {exc}")
        return
    if found["overlaps_fit"]:
        st.caption(
            f"{found['first_day']} .. {found['last_day']} overlap the days the fit learned from: drift shows "
            "less than on days it has not seen."
        )
    stores = pd.DataFrame(found["stores_flagged"])
    st.markdown(f"**Stores that left the model:** {len(stores)}")
    if len(stores):
        stores["sales vs forecast"] = np.expm1(stores["mean_log_error"]) * 100
        stores["share_outside_90"] *= 100
        st.dataframe(
            stores[["store", "share_outside_90", "sales vs forecast", "days"]],
            hide_index=True,
            column_config={
                "store": "Store",
                "share_outside_90": st.column_config.NumberColumn("Days outside the 90 % interval", format="%.0f %%"),
                "sales vs forecast": st.column_config.NumberColumn("Sales against the forecast", format="%+.0f %%"),
                "days": "Days seen",
            },
        )
    effects = pd.DataFrame(found["effects_flagged"])
    st.markdown(f"**Effects that moved:** {len(effects)}")
    if len(effects):
        st.dataframe(effects, hide_index=True)
    inputs = found["inputs"]
    lines = [
        f"promo on {_share(inputs['promo_share']['recent'])} of store-days lately, "
        f"{_share(inputs['promo_share']['year_before'])} the year before",
        f"closed on {_share(inputs['closed_share']['recent'])} lately, {_share(inputs['closed_share']['year_before'])} "
        "the year before",
    ]
    for name in ("new_stores", "vanished_stores", "new_variants", "new_holiday_levels"):
        if inputs.get(name):
            lines.append(f"{name.replace('_', ' ')}: {', '.join(map(str, inputs[name][:20]))}")
    st.markdown("**Inputs:** " + "; ".join(lines))


def _share(value) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
