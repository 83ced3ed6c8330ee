"""The New stores page's parts: which stores to treat as new, how many days they have, and the
forecasts of the model (hierarchy frozen) and the baselines trained on the same days."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.data.summaries import observed_sales
from bhm_core.errors import BhmError
from bhm_core.evaluation.coldstart import check_coldstart
from ui.session import evaluations
from ui.views import evaluation as eval_view

DEFAULT_NEW = 3
MAX_PANELS = 8


def controls(cube) -> dict | None:
    """New stores, K and horizon; None after an st.error (or an info) when they cannot be run."""
    _reuse, hierarchy = evaluations.hierarchy_plan(cube, [])
    in_use = set(hierarchy)
    candidates = [int(s) for s in cube.store_ids if int(s) not in in_use] or cube.store_ids.tolist()
    top = st.columns([2.4, 1, 1], vertical_alignment="bottom")
    new = top[0].multiselect(
        "Stores to treat as new",
        cube.store_ids.tolist(),
        default=candidates[-DEFAULT_NEW:],
        key=f"w.ns.stores.{cube.fingerprint[:10]}",
        persist_state="session",
        help="Each is forecast from only its first K days with sales, as if it "
        "had just opened; the rest of its history is the test",
    )
    known = top[1].number_input(
        "Known days K",
        min_value=1,
        max_value=100_000,
        value=7,
        step=1,
        key="w.ns.known",
        persist_state="session",
        help="Days with sales each new store has, counted from its first",
    )
    horizon = top[2].number_input(
        "Days to forecast", min_value=1, max_value=366, value=28, step=7, key="w.ns.horizon", persist_state="session"
    )
    if not new:
        st.info("Choose at least one store to treat as new.", icon=":material/arrow_upward:")
        return None
    if len(new) >= cube.n_stores:
        st.error("Leave at least one store out of the new ones: the hierarchy is fitted on the others.")
        return None
    try:
        windows = check_coldstart(cube, new, int(known), int(horizon))
    except BhmError as exc:
        st.error(str(exc))
        return None
    return {"new": sorted(int(s) for s in new), "known": int(known), "horizon": int(horizon), "windows": windows}


WIDER = 50  # stores a widened hierarchy rests on


def pooling_warning(cube, new: list, others: list) -> None:
    """Say when the hierarchy has too few stores to pool from (or lacks what the new stores have),
    and offer to fit it on more."""
    report = evaluations.pooling_report(cube, others, new)
    available = cube.n_stores - len(new)
    wider = min(WIDER, available)
    if evaluations.wider_hierarchy():
        st.button(
            "Back to the picked stores (or the current fit) as the hierarchy",
            on_click=evaluations.set_wider_hierarchy,
            args=(None,),
            key="ns.narrow",
        )
    if not report.weak:
        return
    st.warning(report.text(), icon=":material/warning:")
    if wider > len(others):
        st.button(
            f"Fit the hierarchy on {wider} stores instead",
            on_click=evaluations.set_wider_hierarchy,
            args=(wider,),
            icon=":material/hub:",
            key="ns.wider",
            help="The first stores of the data other than the new ones; fitted once and saved, then reused",
        )


def hierarchy_caption(reuse, others: list) -> None:
    if evaluations.wider_hierarchy():
        st.caption(f"The hierarchy: a fit on {len(others)} other stores, as asked above; saved and reused.")
        return
    if reuse is not None:
        st.caption(
            f"The hierarchy: the current fit ({reuse.summary()}); none of the new stores is in it, so it is reused."
        )
    else:
        st.caption(
            f"The hierarchy: a fit on {len(others)} other stores (the Stores page picks "
            "without the new ones, or the first stores), with the priors and settings of "
            "Model & fit; loaded from the saved fits when it exists."
        )


def results(evaluation, cube, kind: str, windows, ekey: str) -> None:
    eval_view.headline(evaluation)
    st.subheader("Model vs baselines trained on the same days")
    eval_view.table(evaluation)
    eval_view.lift_and_calibration(evaluation, "ns", ekey)

    st.subheader("Forecast vs actual, store by store")
    ids = [w.store for w in windows]
    shown = st.multiselect(
        f"Stores to show (up to {MAX_PANELS})",
        ids,
        default=ids[:MAX_PANELS],
        max_selections=MAX_PANELS,
        key="w.ns.shown",
    )
    if not shown:
        st.info("Choose stores to show.", icon=":material/arrow_upward:")
        return

    def known_days():  # a store's known days: its observed days from the first to the K-th
        return pd.concat(
            [observed_sales(cube, [w.store], w.first_known, w.last_known) for w in windows if w.store in shown],
            ignore_index=True,
        )

    eval_view.drill_down(
        evaluation,
        sorted(shown),
        eval_view.y_label(kind),
        "ns",
        ekey,
        known_days,
        "Known days (what every method learned from)",
        shared_x=False,
    )
