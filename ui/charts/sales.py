"""Chart builders of the Data and Stores pages: the store x day coverage grid and sales histories
(their data: bhm_core.data.summaries)."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from bhm_core.data.summaries import STATUS_LABELS
from ui.charts.style import SERIES_COLOUR, STATUS_COLOURS


def missingness_figure(grid: dict) -> go.Figure:
    n = len(STATUS_LABELS)
    scale = []
    for k, colour in enumerate(STATUS_COLOURS):
        scale += [[k / n, colour], [(k + 1) / n, colour]]
    period = "day" if grid["days_per_cell"] == 1 else f"{grid['days_per_cell']} days from"
    fig = go.Figure(
        go.Heatmap(
            z=grid["z"],
            x=grid["x"],
            y=grid["y"],
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            showscale=False,
            xgap=0,
            ygap=0,
            hovertemplate=f"Store %{{y}}<br>{period} %{{x|%d %b %Y}}<extra></extra>",
        )
    )
    for label, colour in zip(STATUS_LABELS, STATUS_COLOURS):  # legend entries only
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name=label, marker=dict(size=12, symbol="square", color=colour)
            )
        )
    n_rows = len(grid["y"])
    height = int(min(720, max(320, 90 + 4 * n_rows)))
    every = math.ceil(n_rows / max(2, (height - 90) // 22))  # about one label per 22 px
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0),
        plot_bgcolor="rgba(0,0,0,0)",
    )
    fig.update_xaxes(title_text="Date", showgrid=False)
    fig.update_yaxes(
        title_text="Store",
        autorange="reversed",
        type="category",
        showgrid=False,
        tickmode="array",
        tickvals=grid["y"][::every],
    )
    return fig


def history_figure(frame: pd.DataFrame, y_label: str, columns: int = 3) -> go.Figure:
    """Small multiples, one panel per store, each with its own sales scale."""
    n_stores = frame["Store"].nunique()
    columns = max(1, min(columns, n_stores))
    n_rows = math.ceil(n_stores / columns)
    fig = px.line(
        frame,
        x="Date",
        y="Sales",
        facet_col="Store",
        facet_col_wrap=columns,
        facet_row_spacing=min(0.12, 0.5 / max(n_rows, 1)),
        facet_col_spacing=0.06,
        color_discrete_sequence=[SERIES_COLOUR],
        labels={"Sales": y_label, "Date": "Date"},
        category_orders={"Store": sorted(frame["Store"].unique())},
    )
    fig.update_traces(
        line=dict(width=1.2), connectgaps=False, hovertemplate="%{x|%a %d %b %Y}<br>%{y:,.0f}<extra></extra>"
    )
    fig.update_yaxes(matches=None, showticklabels=True, rangemode="tozero", tickformat="~s")
    fig.update_xaxes(showticklabels=True)
    fig.for_each_annotation(lambda a: a.update(text=a.text.replace("Store=", "Store ")))
    # One y title for the whole grid instead of one per row.
    fig.for_each_yaxis(lambda axis: axis.update(title_text=None))
    fig.for_each_xaxis(lambda axis: axis.update(title_text=None))
    fig.add_annotation(
        text=y_label, textangle=-90, xref="paper", yref="paper", x=-0.06, y=0.5, showarrow=False, font=dict(size=13)
    )
    fig.update_layout(height=60 + 190 * n_rows, margin=dict(l=70, r=10, t=30, b=10), showlegend=False)
    return fig
