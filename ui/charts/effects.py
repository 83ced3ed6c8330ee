"""Chart builders of the Effects page: ridgeline densities, per-store strips, shrinkage scatter.

Effects are multiplicative (exp of a log-scale contrast), so every effect axis is logarithmic with
a reference line at ×1 (no effect). Effects are keyed by id (the feature's name) and drawn with
their labels; one figure holds one feature group, so each group gets an axis of its own range.
No Streamlit calls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.charts.fit import COMPARE_COLOURS
from ui.charts.style import NEUTRAL_GREY, SERIES_COLOUR, rgba

ROW = 1.0  # vertical room per effect
GROUP_GAP = 0.5  # extra room between groups
GLOBAL_COLOUR = "#f08c00"
TRUTH_COLOUR = "#d6336c"
ROW_PIXELS = 30  # height of one effect's row


def positions(ids: list[str], groups: list[str]) -> dict:
    """y position per effect id, top to bottom, with a gap between groups."""
    y, out, previous = 0.0, {}, None
    for effect, group in zip(ids, groups):
        if previous is not None and group != previous:
            y -= GROUP_GAP
        out[effect] = y
        y -= ROW
        previous = group
    return out


def _kde(log_values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    n = len(log_values)
    bandwidth = max(1.06 * float(np.std(log_values)) * n**-0.2, 1e-4)
    u = (grid[:, None] - log_values[None, :]) / bandwidth
    return np.exp(-0.5 * u**2).sum(1) / (n * bandwidth * np.sqrt(2 * np.pi))


def _effect_axes(fig: go.Figure, pos: dict, labels: dict, title: str) -> None:
    fig.add_vline(x=1.0, line=dict(color=NEUTRAL_GREY, width=1, dash="dash"))
    fig.update_xaxes(type="log", title_text=title, tickformat="~g", showgrid=True, title_font_size=12)
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(pos.values()),
        ticktext=[labels.get(k, k) for k in pos],
        range=[min(pos.values()) - 0.4, max(pos.values()) + 1.0],
        showgrid=False,
        zeroline=False,
    )
    fig.update_layout(
        height=int(110 + ROW_PIXELS * (max(pos.values()) - min(pos.values()) + 1.4)),
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
        hovermode="closest",
    )


def _truth_markers(fig: go.Figure, pos: dict, truth, labels: dict, offset: float = 0.0) -> None:
    """The true values (synthetic data) as marks on each effect's row."""
    if truth is None:
        return
    shown = [k for k in pos if k in truth.index]
    if not shown:
        return
    fig.add_trace(
        go.Scatter(
            x=[float(truth[k]) for k in shown],
            y=[pos[k] + offset for k in shown],
            mode="markers",
            name="true value (demo)",
            marker=dict(symbol="line-ns", size=16, line=dict(width=3, color=TRUTH_COLOUR)),
            text=[labels.get(k, k) for k in shown],
            hovertemplate="%{text}: true ×%{x:.3f}<extra></extra>",
        )
    )


def ridgeline_figure(samples: dict, ids: list[str], labels: dict, truth=None, title: str = "") -> go.Figure:
    """samples: fit label -> long frame (id, multiplier). One density per effect and fit,
    scaled so the tallest density of an effect fills 90% of its row; truth: true multipliers by id."""
    pos = positions(ids, [""] * len(ids))
    fig = go.Figure()
    for effect, y0 in pos.items():
        logs = {
            label: np.log(frame.loc[frame["id"] == effect, "multiplier"].to_numpy()) for label, frame in samples.items()
        }
        logs = {k: v[np.isfinite(v)] for k, v in logs.items() if np.isfinite(v).sum() > 1}
        if not logs:
            continue
        lo = min(np.percentile(v, 0.5) for v in logs.values())
        hi = max(np.percentile(v, 99.5) for v in logs.values())
        pad = 0.1 * max(hi - lo, 1e-3)
        grid = np.linspace(lo - pad, hi + pad, 160)
        dens = {k: _kde(v, grid) for k, v in logs.items()}
        top = max(d.max() for d in dens.values())
        for (label, d), colour in zip(dens.items(), COMPARE_COLOURS):
            height = 0.9 * ROW * d / top
            x = np.exp(grid)
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([x, x[::-1]]),
                    y=np.concatenate([y0 + height, np.full(len(x), y0)]),
                    mode="lines",
                    fill="toself",
                    fillcolor=rgba(colour, 0.45),
                    line=dict(color=colour, width=1.4),
                    name=label,
                    legendgroup=label,
                    showlegend=False,
                    hoveron="fills",
                    hovertemplate=f"{labels.get(effect, effect)}<br>{label}<extra></extra>",
                )
            )
    for label, colour in zip(samples, COMPARE_COLOURS):
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=label,
                legendgroup=label,
                marker=dict(symbol="square", size=12, color=rgba(colour, 0.6)),
            )
        )
    _truth_markers(fig, pos, truth, labels, offset=0.45)
    _effect_axes(fig, pos, labels, title or "Multiplicative effect on expected sales (×, log scale)")
    return fig


def store_strip_figure(stores: pd.DataFrame, global_median: pd.Series, ids: list[str], labels: dict) -> go.Figure:
    """Per-store posterior means (dots, jittered within the row) around the global median (diamond)."""
    pos = positions(ids, [""] * len(ids))
    shown = stores[stores["id"].isin(pos)]
    rng = np.random.default_rng(0)
    y = shown["id"].map(pos).to_numpy() + 0.45 + rng.uniform(-0.28, 0.28, len(shown))
    fig = go.Figure(
        go.Scatter(
            x=shown["multiplier"],
            y=y,
            mode="markers",
            name="store (posterior mean)",
            marker=dict(color=rgba(SERIES_COLOUR, 0.8), size=7, line=dict(width=0)),
            customdata=np.stack([shown["store"], shown["effect"], shown["lo_90"], shown["hi_90"]], axis=-1),
            hovertemplate="Store %{customdata[0]}<br>%{customdata[1]}: ×%{x:.3f}<br>"
            "90%: ×%{customdata[2]:.3f}–×%{customdata[3]:.3f}<extra></extra>",
        )
    )
    medians = global_median.reindex(list(pos)).dropna()
    fig.add_trace(
        go.Scatter(
            x=medians.to_numpy(),
            y=[pos[e] + 0.45 for e in medians.index],
            mode="markers",
            name="chain (global mean effect)",
            marker=dict(symbol="diamond", size=12, color=GLOBAL_COLOUR, line=dict(width=1, color="white")),
            hovertemplate="%{text}: ×%{x:.3f} (chain)<extra></extra>",
            text=[labels.get(k, k) for k in medians.index],
        )
    )
    _effect_axes(fig, {k: v + 0.45 for k, v in pos.items()}, labels, "Per-store effect (posterior mean, ×, log scale)")
    return fig


def shrinkage_figure(
    frame: pd.DataFrame, effect: str, global_median: float, truth: pd.Series | None = None
) -> go.Figure:
    """Least squares per store (x) against the hierarchical estimate (y); size = observed days.
    truth: each store's true multiplier (by store id), drawn at the store's x."""
    lsq = frame["least_squares"].clip(1e-3, 1e3)
    days = frame["observed_days"].to_numpy(float)
    size = 6 + 22 * np.sqrt(days / max(days.max(), 1))
    true = None if truth is None or truth.empty else frame["store"].map(truth).to_numpy(float)
    if true is not None and not np.isfinite(true).any():
        true = None
    extra = [] if true is None else [np.nanmin(true), np.nanmax(true)]
    lo = float(min(lsq.min(), frame["hierarchical"].min(), global_median, *extra)) / 1.05
    hi = float(max(lsq.max(), frame["hierarchical"].max(), global_median, *extra)) * 1.05
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[lo, hi],
            mode="lines",
            name="no shrinkage (y = x)",
            line=dict(color=NEUTRAL_GREY, dash="dash", width=1),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[lo, hi],
            y=[global_median] * 2,
            mode="lines",
            name="chain (global mean effect)",
            line=dict(color=GLOBAL_COLOUR, dash="dot", width=1.5),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=lsq,
            y=frame["hierarchical"],
            mode="markers",
            name="store (size = observed days)",
            marker=dict(size=size, color=rgba(SERIES_COLOUR, 0.6), line=dict(width=1, color=SERIES_COLOUR)),
            customdata=np.stack([frame["store"], days], axis=-1),
            hovertemplate="Store %{customdata[0]} (%{customdata[1]:,.0f} observed days)<br>least squares "
            "×%{x:.3f}<br>hierarchical ×%{y:.3f}<extra></extra>",
        )
    )
    if true is not None:
        fig.add_trace(_true_crosses(lsq, true, frame["store"]))
    axis = dict(type="log", tickformat="~g", range=[np.log10(lo), np.log10(hi)])
    fig.update_xaxes(title_text=f"{effect}: the store's own least squares (×)", **axis)
    fig.update_yaxes(title_text=f"{effect}: hierarchical model (×)", **axis)
    fig.update_layout(
        height=460, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0)
    )
    return fig


def _true_crosses(x, true, stores) -> go.Scatter:
    return go.Scatter(
        x=x,
        y=true,
        mode="markers",
        name="true value (demo)",
        marker=dict(symbol="x-thin", size=10, line=dict(width=2, color=TRUTH_COLOUR)),
        customdata=stores,
        hovertemplate="Store %{customdata}: true ×%{y:.3f}<extra></extra>",
    )
