"""Charts of the History page: a fit's lineage as a timeline, and two fits' forecasts of the same
weeks overlaid. No Streamlit calls."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ui.charts.style import NEUTRAL_GREY, SERIES_COLOUR, rgba

PREVIOUS_COLOUR = "#f08c00"  # the earlier fit of a comparison; the later one has the series colour


def lineage_figure(chain: pd.DataFrame) -> go.Figure:
    """One marker per fit (x: when it was made), joined parent to child, newest right; the hover
    names the fit, its label, how it came from its parent and its holdout RMSPE when gated."""
    ordered = chain.iloc[::-1].reset_index(drop=True)
    created = pd.to_datetime(ordered["created"])
    hover = [
        f"<b>{row.fit[:12]}</b><br>{row.label or ''}<br>{row.how}"
        + (f"<br>holdout RMSPE {row.rmspe:.4f}" if pd.notna(row.rmspe) else "")
        for row in ordered.itertuples()
    ]
    fig = go.Figure(
        go.Scatter(
            x=created,
            y=[0] * len(ordered),
            mode="lines+markers+text",
            text=[key[:8] for key in ordered["fit"]],
            textposition="top center",
            hovertext=hover,
            hoverinfo="text",
            marker=dict(
                size=14, color=[SERIES_COLOUR if i == len(ordered) - 1 else NEUTRAL_GREY for i in range(len(ordered))]
            ),
            line=dict(color=NEUTRAL_GREY),
        )
    )
    fig.update_layout(height=170, margin=dict(l=10, r=10, t=30, b=30), showlegend=False)
    fig.update_yaxes(visible=False, range=[-1, 1.5])
    fig.update_xaxes(title_text="made on")
    if created.max() - created.min() < pd.Timedelta(hours=1):
        # fits made within the hour: an hour either side, or the axis ticks fractions of a second
        middle = created.min() + (created.max() - created.min()) / 2
        fig.update_xaxes(range=[middle - pd.Timedelta(hours=1), middle + pd.Timedelta(hours=1)], tickformat="%H:%M")
    return fig


def movement_figure(frame: pd.DataFrame, names: tuple[str, str], y_label: str, title: str) -> go.Figure:
    """Two fits' forecasts (mean and 90 % band) of the same days, the earlier one in orange."""
    fig = go.Figure()
    for name, colour in zip(names, (PREVIOUS_COLOUR, SERIES_COLOUR)):
        part = frame[frame["fit"] == name].sort_values("date")
        x = pd.to_datetime(part["date"])
        fig.add_trace(
            go.Scatter(
                x=pd.concat([x, x[::-1]]),
                y=pd.concat([part["hi_90"], part["lo_90"][::-1]]),
                fill="toself",
                fillcolor=rgba(colour, 0.15),
                line=dict(width=0),
                name=f"{name}: 90 % interval",
                hoverinfo="skip",
            )
        )
        fig.add_trace(go.Scatter(x=x, y=part["point"], mode="lines", line=dict(color=colour), name=f"{name}: mean"))
    fig.update_layout(
        title=title, height=330, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2)
    )
    fig.update_yaxes(title_text=y_label, rangemode="tozero")
    return fig
