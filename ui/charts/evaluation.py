"""Chart builders of the Baselines and New stores pages: every method's forecasts of a store, the
per-store lift over the best baseline, and interval calibration.

No Streamlit calls. Each method has one colour on every chart; the hierarchical model is always the
Forecast page's blue (bands included) and actual sales are its orange dots.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bhm_core.forecast.predict import METHOD
from ui.charts.forecast import ACTUAL_COLOUR, band_polygons
from ui.charts.style import NEUTRAL_GREY, SERIES_COLOUR, rgba, stacked_panels, vline_shape

METHOD_COLOURS = {
    METHOD: SERIES_COLOUR,
    "ols_log": "#8957e5",  # violet
    "pooled": "#1b9e77",  # teal
    "median_dow_promo": "#d6336c",  # magenta
    "seasonal_naive": "#8c6d1f",  # brown
    "mean": "#57606a",  # slate
}
METHOD_LABELS = {
    METHOD: "Hierarchical model",
    "ols_log": "Per-store regression",
    "pooled": "Pooled regression",
    "median_dow_promo": "Median by weekday × promo",
    "seasonal_naive": "Seasonal naive",
    "mean": "Mean of the known days",
}
OTHER_COLOURS = ("#bf3989", "#0969da", "#1a7f37", "#9a6700")
HISTORY_COLOUR = NEUTRAL_GREY
PANEL_HEIGHT = 260


def colour(method: str) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return OTHER_COLOURS[sum(map(ord, method)) % len(OTHER_COLOURS)]


def label(method: str) -> str:
    return METHOD_LABELS.get(method, method.replace("_", " ").capitalize())


def _model_traces(fig, part: pd.DataFrame, row: int, legend: bool) -> None:
    x = part["date"]
    for level, alpha in ((90, 0.18), (50, 0.35)):
        xs, ys = band_polygons(x, part[f"lo_{level}"], part[f"hi_{level}"])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line=dict(width=0),
                fill="toself",
                fillcolor=rgba(SERIES_COLOUR, alpha),
                hoverinfo="skip",
                name=f"Model {level}% interval",
                legendgroup=f"band{level}",
                showlegend=legend,
            ),
            row,
            1,
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=part["point"],
            mode="lines",
            name=label(METHOD),
            line=dict(color=SERIES_COLOUR, width=2.2),
            legendgroup=METHOD,
            showlegend=legend,
            hovertemplate="%{x|%a %d %b}<br>model %{y:,.0f}<extra></extra>",
        ),
        row,
        1,
    )


def _line(x, y, name: str, group: str, legend: bool, hover: str, **style) -> go.Scatter:
    return go.Scatter(
        x=x, y=y, name=name, legendgroup=group, showlegend=legend, hovertemplate=hover + "<extra></extra>", **style
    )


def _store_panel(fig, mine: pd.DataFrame, methods: list, row: int, past: pd.DataFrame | None, past_name: str):
    """One store's traces: what the methods learned from, each method's forecast, the actuals."""
    legend = row == 1
    if past is not None:
        fig.add_trace(
            _line(
                past["date"],
                past["y"],
                past_name,
                "history",
                legend,
                "%{x|%a %d %b}<br>%{y:,.0f}",
                mode="lines+markers",
                line=dict(color=HISTORY_COLOUR, width=1),
                marker=dict(color=HISTORY_COLOUR, size=4),
            ),
            row,
            1,
        )
    for method in methods:
        part = mine[mine["method"] == method].sort_values("date")
        if part.empty:
            continue
        if method == METHOD:
            _model_traces(fig, part, row, legend)
            continue
        fig.add_trace(
            _line(
                part["date"],
                part["point"],
                label(method),
                method,
                legend,
                "%{x|%a %d %b}<br>" + label(method) + " %{y:,.0f}",
                mode="lines",
                line=dict(color=colour(method), width=1.4, dash="dash"),
            ),
            row,
            1,
        )
    actual = mine[mine["method"] == METHOD].sort_values("date")
    fig.add_trace(
        _line(
            actual["date"],
            actual["y"],
            "Actual sales",
            "actual",
            legend,
            "%{x|%a %d %b}<br>actual %{y:,.0f}",
            mode="markers",
            marker=dict(color=ACTUAL_COLOUR, size=6),
        ),
        row,
        1,
    )


def methods_figure(
    frame: pd.DataFrame,
    stores: list,
    y_label: str,
    history: pd.DataFrame | None = None,
    history_name: str = "Sales before",
    shared_x: bool = True,
    marker=None,
) -> go.Figure:
    """One panel per store: the model's bands and mean, each baseline's point forecast, the
    actual sales, and (history: store, date, y) the sales the methods learned from.

    Closed days break the lines instead of dropping them to 0. marker: a date to mark with a
    dashed line (the backtest's cutoff)."""
    n = max(len(stores), 1)
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=shared_x,
        vertical_spacing=min(0.1, 0.4 / n),
        subplot_titles=[f"Store {s}" for s in stores],
    )
    methods = [METHOD] + [m for m in dict.fromkeys(frame["method"]) if m != METHOD]
    for row, store in enumerate(stores, start=1):
        mine = frame[frame["store"] == store].copy()
        values = ["point", "median"] + [c for c in mine.columns if c[:3] in ("lo_", "hi_")]
        mine.loc[~mine["open"].astype(bool), values] = np.nan
        past = None if history is None else history[history["store"] == store]
        _store_panel(fig, mine, methods, row, past, history_name)
    rows = range(1, len(stores) + 1) if marker is not None else ()
    fig.update_layout(shapes=[vline_shape(row, pd.Timestamp(marker), NEUTRAL_GREY) for row in rows])
    fig.update_xaxes(showticklabels=True)
    stacked_panels(fig, y_label, 110 + PANEL_HEIGHT * n, top=80, legend_gap=45, hovermode="closest")
    return fig


def signed_percent(value: float) -> str:
    """'+1.2 %', '-1.2 %', and '0.0 %' for anything that rounds to zero (not '-0.0 %')."""
    text = f"{value:+.1f}"
    return ("0.0" if float(text) == 0 else text) + " %"


def lift_histogram(lifts: pd.DataFrame) -> go.Figure:
    """Per-store lift (%) of the model over the run's best baseline; > 0: the model is better."""
    values = lifts["lift_pct"].dropna().to_numpy(float)
    fig = go.Figure(
        go.Histogram(
            x=values,
            nbinsx=min(40, max(8, len(values) // 2)),
            marker=dict(color=rgba(SERIES_COLOUR, 0.75), line=dict(color=SERIES_COLOUR, width=1)),
            name="stores",
            hovertemplate="lift %{x}<br>%{y} stores<extra></extra>",
        )
    )
    fig.add_vline(x=0, line=dict(color=NEUTRAL_GREY, width=1.5))
    if values.size:
        median = float(np.median(values))
        fig.add_vline(x=median, line=dict(color=ACTUAL_COLOUR, width=2, dash="dash"))
        fig.add_annotation(
            x=median,
            y=1.0,
            yref="paper",
            yanchor="bottom",
            showarrow=False,
            text=f"median {signed_percent(median)}",
            font=dict(color=ACTUAL_COLOUR),
        )
    fig.update_xaxes(title_text="lift in % (> 0: the model's error is lower)", ticksuffix=" %")
    fig.update_yaxes(title_text="stores")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=30, b=10), showlegend=False, bargap=0.05)
    return fig


def calibration_figure(table: pd.DataFrame) -> go.Figure:
    """Empirical vs nominal coverage per method with intervals; the diagonal is perfect."""
    fig = go.Figure(
        go.Scatter(
            x=[0, 100],
            y=[0, 100],
            mode="lines",
            name="perfectly calibrated",
            line=dict(color=NEUTRAL_GREY, dash="dash", width=1.2),
            hoverinfo="skip",
        )
    )
    for method in [METHOD] + [m for m in dict.fromkeys(table["method"]) if m != METHOD]:
        part = table[table["method"] == method].sort_values("level")
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["level"],
                y=100 * part["coverage"],
                mode="lines+markers",
                name=label(method),
                line=dict(color=colour(method), width=2.4 if method == METHOD else 1.6),
                marker=dict(size=8 if method == METHOD else 6),
                hovertemplate=label(method) + "<br>nominal %{x} %<br>observed %{y:.1f} %<extra></extra>",
            )
        )
    lowest = float(min(40.0, 100 * table["coverage"].min() - 5)) if len(table) else 40.0
    fig.update_xaxes(
        title_text="nominal coverage of the interval", ticksuffix=" %", range=[lowest, 100], tickvals=[50, 80, 90, 95]
    )
    fig.update_yaxes(
        title_text="share of actual sales inside it",
        ticksuffix=" %",
        range=[max(lowest, 0), 100],
        scaleanchor="x",
        scaleratio=1,
    )
    fig.update_layout(
        height=420, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0)
    )
    return fig
