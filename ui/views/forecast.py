"""The Forecast page's parts: window controls, per-store panels, the total, one store-day's density
and the table/CSV. Forecasts come from cached loaders keyed by (fit key, stores, window, scenario,
samples); zooming, tabs and downloads only slice what is cached."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.csvsafe import to_csv
from bhm_core.data.summaries import observed_sale
from bhm_core.forecast.sampling import Scenario
from bhm_core.forecast.whatif import scenario_key
from ui.charts import forecast as forecast_charts
from ui.charts import style
from ui.session import calendar, figures, fit_results
from ui.views.forecast_table import readable_total

MAX_PANELS = 8
HORIZONS = (0, 7, 14, 28, 42, 56, 91, 182)
HISTORY = {"8 weeks": 56, "6 months": 182, "1 year": 365, "All": None}
SAMPLES = (200, 500, 1000)


def controls(fit, sub) -> dict:
    """Stores, window, scenario and samples; returns the forecast request."""
    ids = [int(i) for i in fit.result.store_ids]
    top = st.columns([2.2, 1.4, 1.2, 1.2], vertical_alignment="bottom")
    shown_label = (
        f"Stores to show (of the {len(ids)} fitted)"
        if len(ids) <= MAX_PANELS
        else f"Stores to show (up to {MAX_PANELS} of the {len(ids)} fitted)"
    )
    stores = top[0].multiselect(
        shown_label,
        ids,
        default=ids[: min(3, len(ids))],
        max_selections=MAX_PANELS,
        key=f"w.fc.stores.{fit.key}",
        persist_state="session",
    )
    horizon = top[1].select_slider(
        "Horizon (days after the data)", HORIZONS, value=42, key="w.fc.horizon", persist_state="session"
    )
    history = top[2].selectbox("History shown", list(HISTORY), key="w.fc.history", persist_state="session")
    n_samples = top[3].selectbox(
        "Samples",
        SAMPLES,
        index=1,
        key="w.fc.samples",
        persist_state="session",
        help="Posterior predictive draws per day",
    )
    end = sub.dates[-1]
    days = HISTORY[history]
    first = sub.dates[0] if days is None else max(sub.dates[0], end - np.timedelta64(days - 1, "D"))
    last = end + np.timedelta64(horizon, "D")
    plan, plan_text = calendar.plan(sub) if horizon else (None, "")
    scenario = Scenario(calendar=plan)
    return {
        "stores": tuple(sorted(stores)),
        "first": str(first),
        "last": str(last),
        "horizon": int(horizon),
        "n_samples": int(n_samples),
        "end": end,
        "plan": scenario,
        "plan_key": scenario_key(scenario),
        "plan_text": plan_text,
    }


def zoom(request: dict) -> tuple:
    first = dt.date.fromisoformat(request["first"])
    last = dt.date.fromisoformat(request["last"])
    if first >= last:
        return first, last
    chosen = st.slider("Zoom (dates)", first, last, (first, last), format="D MMM YYYY", key=f"w.fc.zoom.{first}.{last}")
    return tuple(chosen)


def _x_range(window):
    return [pd.Timestamp(window[0]) - pd.Timedelta(hours=12), pd.Timestamp(window[1]) + pd.Timedelta(hours=12)]


def _in(frame: pd.DataFrame, window) -> pd.DataFrame:
    return frame[frame["date"].between(pd.Timestamp(window[0]), pd.Timestamp(window[1]))]


def shown_frame(fit, sub, request, window) -> pd.DataFrame | None:
    """The per-store forecast of the chosen stores inside the zoom window (None: no stores)."""
    if not request["stores"]:
        return None
    frame = fit_results.store_forecast(
        fit.key,
        request["stores"],
        request["first"],
        request["last"],
        request["plan_key"],
        request["n_samples"],
        fit.result,
        sub,
        request["plan"],
    )
    return _in(frame, window)


def stores_tab(fit, sub, request, window, kind) -> None:
    shown = shown_frame(fit, sub, request, window)
    if shown is None:
        st.info("Choose stores to show above.", icon=":material/arrow_upward:")
        return
    figure = figures.figure(
        f"fc.stores|{fit.key}|{_request_key(request)}|{window}|{kind}",
        lambda: forecast_charts.forecast_figure(
            shown, list(request["stores"]), style.sales_axis_label(kind), request["end"], _x_range(window)
        ),
    )
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="fc.stores")
    st.caption(
        "Bands: 50 % (dark) and 90 % (light) posterior predictive intervals; line: mean, "
        "dotted: median. The dashed line marks the end of the data; after it, promo days and "
        "holidays are shaded by where they come from: planned (a calendar), inferred (public "
        "holidays of the store's state), estimated (a year before)."
    )


def _request_key(request: dict) -> str:
    return repr([(k, v) for k, v in sorted(request.items()) if k not in ("plan", "plan_text")])


def total_tab(fit, sub, request, window, kind) -> None:
    total = fit_results.total_forecast(
        fit.key,
        request["first"],
        request["last"],
        request["plan_key"],
        request["n_samples"],
        fit.result,
        sub,
        request["plan"],
    )
    shown = _in(total, window)
    st.plotly_chart(
        forecast_charts.total_figure(
            shown, len(fit.result.store_ids), style.sales_axis_label(kind), request["end"], _x_range(window)
        ),
        width="stretch",
        config={"displaylogo": False},
        key="fc.total",
    )
    shock = fit.result.day_shock_sd
    st.caption(
        "The interval comes from summing sampled store paths, not from adding the stores' "
        "intervals (which would be too wide). "
        + (
            f"Those paths share each day's chain-wide swing (weather, events: sd {100 * shock:.1f} % "
            "a day, measured on the fit's residuals), which the stores' own noise does not "
            "average away."
            if shock > 0
            else "The fit found no chain-wide day-to-day swings."
        )
    )
    st.download_button(
        "Download the total as CSV",
        to_csv(readable_total(shown, kind)),
        "forecast_total.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="fc.total_csv",
    )


def day_tab(fit, sub, request, window, kind) -> None:
    ids = list(request["stores"]) or [int(fit.result.store_ids[0])]
    left, right = st.columns([1, 3])
    store = left.selectbox("Store", ids, key="w.fc.day_store")
    default = min(window[1], dt.date.fromisoformat(str(request["end"] + np.timedelta64(1, "D"))))
    day = left.date_input(
        "Day", value=default, min_value=window[0], max_value=window[1], key=f"w.fc.day.{window[0]}.{window[1]}"
    )
    samples = fit_results.day_samples(
        fit.key, int(store), str(day), request["plan_key"], 4000, fit.result, sub, request["plan"]
    )
    actual = observed_sale(sub, store, day)
    p5, p95 = np.percentile(samples, [5, 95])
    left.metric("Mean", f"{samples.mean():,.0f}", border=True)
    left.metric("90 % interval", f"{p5:,.0f} – {p95:,.0f}", border=True)
    if actual is not None:
        left.metric("Actual", f"{actual:,.0f}", border=True)
    title = f"Store {store}, {day:%A %d %B %Y}: {len(samples):,} posterior predictive draws"
    right.plotly_chart(
        forecast_charts.day_density_figure(samples, actual, title, style.sales_axis_label(kind)),
        width="stretch",
        config={"displaylogo": False},
        key="fc.day",
    )
