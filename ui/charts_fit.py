"""Chart builders of the Model & fit page: prior densities, prior predictive check, loss curves.

Tidy frames or arrays in, Plotly figures out; no Streamlit calls. Colours as in ui/charts.py:
fixed per meaning, readable in the light and dark themes.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .charts import SERIES_COLOUR

PRIOR_COLOUR = "#8957e5"
COMPARE_COLOURS = (SERIES_COLOUR, "#e8590c", "#2ea043", "#8957e5")
MARGIN = dict(l=10, r=10, t=36, b=10)


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _fill(x, y, name, colour, hover):
    return go.Scatter(x=x, y=y, mode="lines", name=name, line=dict(color=colour, width=2),
                      fill="tozeroy", fillcolor=_rgba(colour, 0.2), hovertemplate=hover)


def prior_figure(mean, spread, mean_title: str, spread_title: str) -> go.Figure:
    """Two panels: the group mean as exp(theta) on a log axis, and the per-store spread sigma."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=(mean_title, spread_title))
    fig.add_trace(_fill(mean["multiplier"], mean["density"], "group mean", PRIOR_COLOUR,
                        "×%{x:.3~g}<extra></extra>"), 1, 1)
    fig.add_trace(_fill(spread["sigma"], spread["density"], "spread", PRIOR_COLOUR,
                        "σ = %{x:.2f}<extra></extra>"), 1, 2)
    fig.update_xaxes(type="log", tickformat="~g", row=1, col=1)
    fig.update_xaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(showticklabels=False, title_text="prior density", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_annotations(font_size=13)
    fig.update_layout(height=230, margin=MARGIN, showlegend=False)
    return fig


def _log10_ticks(lo: float, hi: float):
    values = list(range(math.floor(lo), math.ceil(hi) + 1))
    step = max(1, math.ceil(len(values) / 10))
    values = values[::step]
    names = {0: "1", 3: "1k", 6: "1M", 9: "1G", 12: "1T"}

    def label(v):
        if v in names:
            return names[v]
        if 0 < v < 3:
            return f"{10 ** v:,}"
        if 3 < v < 6:
            return f"{10 ** (v - 3)}k"
        if 6 < v < 9:
            return f"{10 ** (v - 6)}M"
        return f"1e{v}"
    return values, [label(v) for v in values]


def prior_predictive_figure(prior_log10: np.ndarray, observed_log10: np.ndarray, unit: str) -> go.Figure:
    """Histograms of log10 daily sales: implied by the priors vs observed."""
    lo = min(np.percentile(prior_log10, 0.5), observed_log10.min()) - 0.5
    hi = max(np.percentile(prior_log10, 99.5), observed_log10.max()) + 0.5
    shown = np.clip(prior_log10, lo, hi)
    size = (hi - lo) / 80
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=observed_log10, name="observed sales", histnorm="probability density",
                               xbins=dict(start=lo, end=hi, size=size), marker_color=SERIES_COLOUR,
                               opacity=0.75, hovertemplate="observed<extra></extra>"))
    fig.add_trace(go.Histogram(x=shown, name="implied by the priors", histnorm="probability density",
                               xbins=dict(start=lo, end=hi, size=size), marker_color=PRIOR_COLOUR,
                               opacity=0.6, hovertemplate="prior<extra></extra>"))
    values, labels = _log10_ticks(lo, hi)
    fig.update_xaxes(tickmode="array", tickvals=values, ticktext=labels, range=[lo, hi],
                     title_text=f"Expected daily sales ({unit}, log scale)")
    fig.update_yaxes(showticklabels=False, title_text="density")
    fig.update_layout(barmode="overlay", height=300, margin=MARGIN,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def loss_figure(steps, losses, total_steps: int | None = None, title: str = "") -> go.Figure:
    fig = go.Figure(go.Scatter(x=steps, y=losses, mode="lines+markers" if len(steps) < 40 else "lines",
                               line=dict(color=SERIES_COLOUR, width=1.6), marker=dict(size=5),
                               hovertemplate="step %{x:,}<br>loss %{y:,.1f}<extra></extra>"))
    if total_steps:
        fig.update_xaxes(range=[0, total_steps])
    _loss_axes(fig, title)
    return fig


def _loss_axes(fig: go.Figure, title: str) -> None:
    fig.update_xaxes(title_text="SVI step", rangemode="tozero")
    fig.update_yaxes(title_text="loss (negative ELBO)", tickformat="~s")
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title, font_size=14) if title else None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))


def losses_compare_figure(curves: dict) -> go.Figure:
    """curves: label -> losses per step. Later steps decide the comparison, so the y range skips
    the first 10% of steps (where the loss falls fastest)."""
    fig = go.Figure()
    tail = []
    for (label, losses), colour in zip(curves.items(), COMPARE_COLOURS):
        losses = np.asarray(losses, np.float64)
        fig.add_trace(go.Scatter(x=np.arange(1, len(losses) + 1), y=losses, mode="lines", name=label,
                                 line=dict(color=colour, width=1.4),
                                 hovertemplate="step %{x:,}<br>loss %{y:,.1f}<extra>" + label + "</extra>"))
        finite = losses[len(losses) // 10:]
        tail.extend(finite[np.isfinite(finite)].tolist())
    if tail:
        lo, hi = np.percentile(tail, [0, 99])
        pad = 0.05 * max(hi - lo, 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad])
    _loss_axes(fig, "")
    return fig
