"""The Baselines page's parts: the backtest window (cutoff, horizon) and its results."""

from __future__ import annotations

import datetime as dt

import numpy as np
import streamlit as st

from bhm_core.data.summaries import observed_sales
from bhm_core.errors import BhmError
from bhm_core.evaluation.backtest import DEFAULT_HORIZON, check_window
from ui.charts import evaluation as eval_charts
from ui.views import evaluation as eval_view

HISTORY_DAYS = 28  # sales before the cutoff shown in the drill-down


def _date(day) -> dt.date:
    return dt.date.fromisoformat(str(np.datetime64(day, "D")))


def controls(cube) -> dict | None:
    """Cutoff and horizon; None after an st.error when they do not fit the data."""
    first, last = cube.dates[0], cube.dates[-1]
    default = max(first, last - np.timedelta64(DEFAULT_HORIZON, "D"))
    left, right, _ = st.columns([1.2, 1, 2.2], vertical_alignment="bottom")
    cutoff = left.date_input(
        "Cutoff (last day the fit sees)",
        value=_date(default),
        min_value=_date(first),
        max_value=_date(last),
        key=f"w.bt.cutoff.{cube.fingerprint[:10]}",
        persist_state="session",
        help="The model and the baselines learn from the days up to the cutoff and forecast the days after it",
    )
    horizon = right.number_input(
        "Horizon (days)",
        min_value=1,
        max_value=366,
        value=DEFAULT_HORIZON,
        step=7,
        key="w.bt.horizon",
        persist_state="session",
    )
    try:
        cutoff, horizon, end = check_window(cube, str(cutoff), int(horizon))
    except BhmError as exc:
        st.error(str(exc))
        return None
    return {"cutoff": cutoff, "horizon": horizon, "end": end}


def results(evaluation, cube, kind: str, ekey: str) -> None:
    eval_view.headline(evaluation)
    st.subheader("Model vs baselines")
    eval_view.table(evaluation)
    eval_view.lift_and_calibration(evaluation, "bt", ekey)
    eval_view.error_anatomy(evaluation)

    st.subheader("One store, every method")
    stores = sorted(int(s) for s in evaluation.forecasts["store"].unique())
    lifts = {e["store"]: e for e in evaluation.summary["per_store"]}
    store = st.selectbox("Store", stores, key="w.bt.store", format_func=lambda s: _store_text(s, lifts))
    cutoff = np.datetime64(evaluation.summary["cutoff"], "D")
    first = cutoff - np.timedelta64(HISTORY_DAYS - 1, "D")
    eval_view.drill_down(
        evaluation,
        [store],
        eval_view.y_label(kind),
        "bt",
        ekey,
        lambda: observed_sales(cube, [store], first, cutoff),
        "Sales before the cutoff",
        marker=cutoff,
    )


def _store_text(store: int, lifts: dict) -> str:
    entry = lifts.get(store)
    if not entry or entry.get("baseline_rmspe") in (None, 0):
        return f"Store {store}"
    return (
        f"Store {store}: model RMSPE {100 * entry['rmspe']:.1f} %, "
        f"{eval_charts.label(entry['baseline'])} {100 * entry['baseline_rmspe']:.1f} %"
    )
