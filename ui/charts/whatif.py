"""Chart builders of the Forecast page's what-ifs: the plan against a promo scenario, and two fits'
forecasts against each other; the total over the stores first, then one panel per store.
No Streamlit calls."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.charts.forecast import band_polygons
from ui.charts.style import SERIES_COLOUR, rgba, stacked_panels

OTHER_COLOUR = "#e8590c"
PANEL_HEIGHT = 230
TOTAL = "total"


def _panels(stores: list, y_label: str, title_total: str):
    names = [title_total] + [f"Store {s}" for s in stores]
    n = len(names)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=min(0.08, 0.3 / n), subplot_titles=names)
    stacked_panels(fig, y_label, 80 + PANEL_HEIGHT * n, top=70, legend_gap=35, hovermode="x unified")
    return fig


def _line(fig, x, y, name, colour, row, legend, dash=None):
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="lines",
            name=name,
            legendgroup=name,
            showlegend=legend,
            line=dict(color=colour, width=2, dash=dash),
            hovertemplate=name + " %{y:,.0f}<extra></extra>",
        ),
        row,
        1,
    )


def promo_figure(daily: pd.DataFrame, stores: list, y_label: str, what: str) -> go.Figure:
    """Expected daily sales under the plan and under the scenario: the total, then each store."""
    fig = _panels(stores, y_label, "Total over the stores of the what-if")
    total = daily.groupby("date", as_index=False)[["plan", "scenario"]].sum()
    for row, part in enumerate([total] + [daily[daily["store"] == s] for s in stores], start=1):
        _line(fig, part["date"], part["plan"], "Plan", SERIES_COLOUR, row, row == 1)
        _line(fig, part["date"], part["scenario"], what, OTHER_COLOUR, row, row == 1, dash="dash")
    return fig


def fits_figure(daily: pd.DataFrame, stores: list, y_label: str, names: tuple) -> go.Figure:
    """Each fit's mean and 90 % band: the daily total over the stores, then each store."""
    fig = _panels(stores, y_label, "Total over the fitted stores")
    for row, store in enumerate([TOTAL, *stores], start=1):
        part = daily[daily["store"] == store]
        for suffix, name, colour in (("a", names[0], SERIES_COLOUR), ("b", names[1], OTHER_COLOUR)):
            xs, ys = band_polygons(part["date"], part[f"lo_90_{suffix}"], part[f"hi_90_{suffix}"])
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    line=dict(width=0),
                    fill="toself",
                    fillcolor=rgba(colour, 0.16),
                    name=f"{name}: 90 % interval",
                    legendgroup=f"band{suffix}",
                    showlegend=row == 1,
                    hoverinfo="skip",
                ),
                row,
                1,
            )
            _line(
                fig,
                part["date"],
                part[f"mean_{suffix}"],
                name,
                colour,
                row,
                row == 1,
                "dash" if suffix == "b" else None,
            )
    return fig
