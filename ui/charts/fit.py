"""Chart builders of the Model & fit page: prior densities, prior predictive check, loss curves.

Tidy frames or arrays in, Plotly figures out; no Streamlit calls. Colours as in ui.charts.style:
fixed per meaning, readable in the light and dark themes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.charts.style import SERIES_COLOUR, rgba

PRIOR_COLOUR = "#8957e5"
COMPARE_COLOURS = (SERIES_COLOUR, "#e8590c", "#2ea043", "#8957e5")
MARGIN = dict(l=10, r=10, t=36, b=10)


def _fill(x, y, name, colour, hover):
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        name=name,
        line=dict(color=colour, width=2),
        fill="tozeroy",
        fillcolor=rgba(colour, 0.2),
        hovertemplate=hover,
    )


def _log_ticks(fig, low: float, high: float, **where) -> None:
    """Readable ticks on a log axis: whole decades over a wide range, 1-2-5 over a medium one."""
    decades = np.log10(high / low)
    dtick = 1 if decades > 2.5 else "D2" if decades > 0.8 else None
    fig.update_xaxes(type="log", tickformat="~g", dtick=dtick, **where)


def prior_figure(mean, spread, mean_title: str, spread_title: str) -> go.Figure:
    """Two panels: the group mean as exp(theta) on a log axis, and the per-store spread sigma."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1)
    fig.add_trace(
        _fill(mean["multiplier"], mean["density"], "group mean", PRIOR_COLOUR, "×%{x:.3~g}<extra></extra>"), 1, 1
    )
    fig.add_trace(
        _fill(spread["sigma"], spread["density"], "spread", PRIOR_COLOUR, "σ = %{x:.2f}<extra></extra>"), 1, 2
    )
    _log_ticks(fig, mean["multiplier"].iloc[0], mean["multiplier"].iloc[-1], row=1, col=1)
    fig.update_xaxes(title_text=mean_title, title_font_size=12, row=1, col=1)
    fig.update_xaxes(rangemode="tozero", title_text=spread_title, title_font_size=12, row=1, col=2)
    fig.update_yaxes(showticklabels=False, title_text="prior density", title_font_size=12, row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=10, b=10), showlegend=False)
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
            return f"{10**v:,}"
        if 3 < v < 6:
            return f"{10 ** (v - 3)}k"
        if 6 < v < 9:
            return f"{10 ** (v - 6)}M"
        return f"1e{v}"

    return values, [label(v) for v in values]


def _step_area(values, edges, name, colour):
    counts, _ = np.histogram(values, bins=edges)
    height = counts / max(counts.max(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    return go.Scatter(
        x=centres,
        y=height,
        mode="lines",
        line=dict(color=colour, width=1.5, shape="hvh"),
        fill="tozeroy",
        fillcolor=rgba(colour, 0.3),
        name=name,
        hoverinfo="skip",
    )


def prior_predictive_figure(prior_log10: np.ndarray, observed_log10: np.ndarray, unit: str) -> go.Figure:
    """log10 daily sales implied by the priors vs observed; each histogram scaled to its own peak,
    the data's 1-99 % range shaded."""
    lo = min(np.percentile(prior_log10, 0.5), observed_log10.min()) - 0.5
    hi = max(np.percentile(prior_log10, 99.5), observed_log10.max()) + 0.5
    edges = np.linspace(lo, hi, 90)
    fig = go.Figure()
    d_lo, d_hi = np.percentile(observed_log10, [1, 99])
    fig.add_vrect(x0=d_lo, x1=d_hi, fillcolor=rgba(SERIES_COLOUR, 0.1), line_width=0, layer="below")
    fig.add_trace(_step_area(np.clip(prior_log10, lo, hi), edges, "implied by the priors", PRIOR_COLOUR))
    fig.add_trace(_step_area(observed_log10, edges, "observed", SERIES_COLOUR))
    values, labels = _log10_ticks(lo, hi)
    fig.update_xaxes(
        tickmode="array",
        tickvals=values,
        ticktext=labels,
        range=[lo, hi],
        title_text=f"Expected daily sales ({unit}, log scale)",
    )
    fig.update_yaxes(showticklabels=False, title_text="share (peak = 1)", range=[0, 1.08])
    fig.update_layout(height=300, margin=MARGIN, legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
    return fig


def loss_figure(steps, losses, title: str = "") -> go.Figure:
    """Loss per step; long runs get a faint raw line under a rolling mean."""
    steps, losses = np.asarray(steps), np.asarray(losses, np.float64)
    fig = go.Figure()
    if len(losses) >= 60:
        window = max(5, len(losses) // 40)
        smooth = pd.Series(losses).rolling(window, min_periods=1, center=True).mean()
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=losses,
                mode="lines",
                name="per step",
                line=dict(color=rgba(SERIES_COLOUR, 0.3), width=1),
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=smooth,
                mode="lines",
                name=f"mean of {window} steps",
                line=dict(color=SERIES_COLOUR, width=2),
                hovertemplate="step %{x:,}<br>loss %{y:,.1f}<extra></extra>",
            )
        )
        _tail_range(fig, losses)
    else:
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=losses,
                mode="lines+markers",
                name="loss",
                line=dict(color=SERIES_COLOUR, width=1.6),
                marker=dict(size=5),
                hovertemplate="step %{x:,}<br>loss %{y:,.1f}<extra></extra>",
            )
        )
    _loss_axes(fig, title)
    return fig


def _tail_range(fig: go.Figure, losses: np.ndarray) -> None:
    """y range from the last 90 % of steps: the first steps' large losses would flatten the rest."""
    tail = losses[len(losses) // 10 :]
    tail = tail[np.isfinite(tail)]
    if tail.size:
        lo, hi = np.percentile(tail, [0, 99.5])
        pad = 0.05 * max(hi - lo, 1e-6 * max(abs(hi), 1.0))
        fig.update_yaxes(range=[lo - pad, hi + pad])


def _loss_axes(fig: go.Figure, title: str) -> None:
    fig.update_xaxes(title_text="SVI step", rangemode="tozero")
    fig.update_yaxes(title_text="loss (negative ELBO)", tickformat="~s")
    fig.update_layout(
        height=280,
        margin=dict(l=10, r=10, t=36 if title else 10, b=10),
        title=dict(text=title, font_size=14) if title else None,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )


def losses_compare_figure(curves: dict) -> go.Figure:
    """curves: label -> losses per step. Later steps decide the comparison, so the y range skips
    the first 10% of steps (where the loss falls fastest)."""
    fig = go.Figure()
    tail = []
    for (label, losses), colour in zip(curves.items(), COMPARE_COLOURS):
        losses = np.asarray(losses, np.float64)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(losses) + 1),
                y=losses,
                mode="lines",
                name=label,
                line=dict(color=colour, width=1.4),
                hovertemplate="step %{x:,}<br>loss %{y:,.1f}<extra>" + label + "</extra>",
            )
        )
        finite = losses[len(losses) // 10 :]
        tail.extend(finite[np.isfinite(finite)].tolist())
    if tail:
        lo, hi = np.percentile(tail, [0, 99])
        pad = 0.05 * max(hi - lo, 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad])
    _loss_axes(fig, "")
    return fig
