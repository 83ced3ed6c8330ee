"""Parts shared by the Baselines and New stores pages: the run button and its job (the one job
panel of ui.views.job_progress), the metrics table, the headline lift, the per-store lift histogram,
interval calibration and the per-store drill-down."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.evaluation.tables import best_baseline, calibration, lift_percent, metrics_table, store_lifts
from bhm_core.forecast.predict import METHOD
from ui.charts import evaluation as eval_charts
from ui.charts import style
from ui.session import evaluations, figures
from ui.views import job_progress

PERCENT = ("rmspe", "mape", "coverage_50", "coverage_90")
COLUMNS = {
    "rmspe": "RMSPE",
    "mape": "MAPE",
    "mae": "MAE",
    "rmse": "RMSE",
    "coverage_50": "Coverage 50 %",
    "coverage_90": "Coverage 90 %",
    "crps": "CRPS",
}


def run(kind: str, label: str, ready: bool, key: str | None, start, idle_hint: str):
    """The run button, the job's progress and its last notice; returns the evaluation for these
    inputs (key), or stops the page while there is none (with `idle_hint` when nothing runs)."""
    lifecycle = evaluations.lifecycle(kind)
    _run_button(kind, label, ready, evaluations.cached(key) is not None, start)
    job_progress.progress(lifecycle)
    job_progress.show_notice(lifecycle)
    evaluation = evaluations.cached(key)  # a job that just finished is collected
    if evaluation is None:
        if ready and lifecycle.job() is None:
            st.info(idle_hint, icon=":material/info:")
        st.stop()
    return evaluation


def _run_button(kind: str, label: str, ready: bool, have_result: bool, start) -> None:
    """The button that starts the job (disabled while one runs, the inputs are invalid, or the
    result for these inputs is already there)."""
    running = evaluations.lifecycle(kind).job() is not None
    if have_result and not running:
        label = "Done for these inputs (shown below)"
    help_text = (
        "One is running"
        if running
        else "Fix the inputs above first"
        if not ready
        else "Shown below: the same inputs were run before"
        if have_result
        else "Runs in the background; the page stays usable"
    )
    if st.button(
        label,
        type="primary",
        icon=":material/play_arrow:",
        help=help_text,
        disabled=running or not ready or have_result,
        key=f"{kind}.run",
    ):
        start()
        st.rerun()


def headline(evaluation) -> None:
    summary = evaluation.summary
    model = summary["model"].get("rmspe")
    best, best_rmspe = best_baseline(summary)
    lift = lift_percent(model, best_rmspe)
    lifts = store_lifts(summary)["lift_pct"].dropna()
    cols = st.columns(4)
    cols[0].metric(
        "Model RMSPE",
        _pct(model),
        border=True,
        help="Root mean squared percentage error over the scored store-days, on the point "
        "that minimises it under each method's predictive distribution (the model, "
        "the log-linear baselines); on the plain forecast for the others",
    )
    cols[1].metric(
        "Best baseline RMSPE",
        _pct(best_rmspe),
        border=True,
        delta=eval_charts.label(best) if best else None,
        delta_color="off",
        delta_arrow="off",
        help="The baseline with the lowest RMSPE over all stores of this run",
    )
    cols[2].metric(
        "Lift over the best baseline",
        "—" if lift is None else eval_charts.signed_percent(lift),
        border=True,
        help="How much lower the model's RMSPE is, in % of the baseline's",
    )
    cols[3].metric("Stores where the model is better", f"{int((lifts > 0).sum())} of {len(lifts)}", border=True)


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def table(evaluation) -> None:
    """Model vs every baseline; the model first, then the baselines from best to worst RMSPE."""
    frame = metrics_table(evaluation.summary)
    model_rmspe = evaluation.summary["model"].get("rmspe")
    frame = pd.concat([frame.iloc[:1], frame.iloc[1:].sort_values("rmspe")], ignore_index=True)
    lifts = [None if m == METHOD else lift_percent(model_rmspe, r) for m, r in zip(frame["method"], frame["rmspe"])]
    for column in PERCENT:
        frame[column] = 100 * frame[column]
    frame["method"] = frame["method"].map(eval_charts.label)
    frame["lift"] = np.array(lifts, dtype=float)
    frame = frame.rename(columns={**COLUMNS, "method": "Method", "lift": "Model's lift (RMSPE)"})
    formats = {COLUMNS[c]: "{:.1f} %" for c in PERCENT}
    formats.update(dict.fromkeys(("MAE", "RMSE", "CRPS"), "{:,.0f}"))
    formats = {name: pattern.format for name, pattern in formats.items()}
    formats["Model's lift (RMSPE)"] = eval_charts.signed_percent
    for name, show in formats.items():  # as text: a dash, not "None", where a method has none
        frame[name] = [show(v) if pd.notna(v) else "—" for v in frame[name]]
    right = {name: st.column_config.TextColumn(alignment="right") for name in formats}
    st.dataframe(frame, hide_index=True, column_config=right)
    st.caption(
        f"{evaluation.summary['n_scored_cells']:,} store-days scored (days with observed "
        "sales; closed days and missing rows are not scored). Coverage: share of actual sales "
        "inside the central interval (ideal: 50 % and 90 %). CRPS scores the whole forecast "
        "distribution (lower is better). —: the method has no intervals or distribution."
    )


def lift_and_calibration(evaluation, key: str, ekey: str) -> None:
    """ekey: the evaluation's content key (ui.session.evaluations), which names the cached figures."""
    summary = evaluation.summary
    best, best_rmspe = best_baseline(summary)
    left, right = st.columns([1.15, 1], gap="large")
    with left:
        lifts = store_lifts(summary)
        overall = lift_percent(summary["model"].get("rmspe"), best_rmspe)
        st.markdown(
            f"**Per-store lift over {eval_charts.label(best) if best else 'the best baseline'}"
            "** (RMSPE)" + ("" if overall is None else f": {eval_charts.signed_percent(overall)} over all stores")
        )
        figure = figures.figure(f"{key}.lift|{ekey}", lambda: eval_charts.lift_histogram(lifts))
        st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=f"{key}.lift")
        st.caption(
            "Each store's RMSPE under the model against the same baseline on that store "
            "(the one best over all stores: a fixed competitor, not a per-store oracle). "
            "Right of 0: the model's error is lower on that store."
        )
    with right:
        st.markdown("**Interval calibration**")
        figure = figures.figure(
            f"{key}.calibration|{ekey}", lambda: eval_charts.calibration_figure(calibration(evaluation.forecasts))
        )
        st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=f"{key}.calibration")
        st.caption(
            "On the diagonal, an 80 % interval holds 80 % of the actual sales. Below it the "
            "intervals are too narrow (over-confident), above it too wide. Methods without "
            "intervals are not shown."
        )
        total = summary.get("total")
        if total:
            st.markdown(
                f"**Daily total over the {summary['n_stores']} stores**: the model's 90 % "
                f"interval held it on {total['coverage_90']:.0%} of the {total['n_days']} days, "
                f"the 50 % interval on {total['coverage_50']:.0%}; RMSPE of the total "
                f"{100 * total['rmspe']:.1f} %.",
                help="Sums of sampled store paths that share each day's chain-wide swing, "
                "over the store-days with recorded sales (Forecast page, Total tab)",
            )


def error_anatomy(evaluation) -> None:
    """The model's and the best baseline's RMSPE split into what a store's level over the horizon,
    the chain-wide shock of each day, and neither explain (Evaluation.anatomy)."""
    rows = [
        {
            "Method": eval_charts.label(method),
            "RMSPE": parts["rmspe"],
            "Each store's level known": parts["without_store_level"],
            "Each day's chain-wide shock known": parts["without_day_shocks"],
            "Both known": parts["without_both"],
        }
        for method, parts in evaluation.anatomy.items()
    ]
    if not rows:
        return
    with st.expander("Where the error comes from", icon=":material/troubleshoot:"):
        frame = pd.DataFrame(rows)
        percent = {c: st.column_config.NumberColumn(format="%.1f %%") for c in frame.columns[1:]}
        for column in percent:
            frame[column] = 100 * frame[column]
        st.dataframe(frame, hide_index=True, column_config=percent)
        st.caption(
            "RMSPE if the forecast had been corrected, in hindsight, by each store's mean "
            "error over the horizon, by each day's error shared by all stores, or by both. "
            "The gap to the last column is what no per-store forecast can remove from these "
            "data: chain-wide day-to-day swings (weather, events) and store-day noise."
        )


def drill_down(
    evaluation,
    stores: list,
    y_label: str,
    key: str,
    ekey: str,
    history,
    history_name: str,
    marker=None,
    shared_x: bool = True,
) -> None:
    """history: a (store, date, y) frame, or a function giving it (called only to build)."""

    def build():
        past = history() if callable(history) else history
        return eval_charts.methods_figure(
            evaluation.forecasts, stores, y_label, past, history_name, shared_x=shared_x, marker=marker
        )

    figure = figures.figure(f"{key}.stores|{ekey}|{stores}|{y_label}", build)
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=f"{key}.stores")
    st.caption(
        "Blue: the model's mean with its 50 % (dark) and 90 % (light) intervals; dashed: "
        "each baseline's forecast; orange dots: actual sales. Closed days break the lines."
    )


def y_label(kind: str) -> str:
    return style.sales_axis_label(kind)
