"""Chart builders of the Forecast page: per-store bands, the total, one store-day's density.

No Streamlit calls. Forecast blue with a darker 50% band inside a lighter 90% band, actual sales
as orange dots, promo days shaded green, state holidays violet, closed days as grey crosses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.charts.style import NEUTRAL_GREY, SERIES_COLOUR, band_shape, rgba, vline_shape

ACTUAL_COLOUR = "#f08c00"
PROMO_FILL = "rgba(46,160,67,0.14)"
HOLIDAY_FILL = "rgba(137,87,229,0.22)"
# Days ahead, by where their promo or holiday came from: the stronger, the surer.
AHEAD_ALPHA = {"calendar": 1.0, "inferred": 0.75, "estimated": 0.45}
AHEAD_WORDS = {"calendar": "planned", "inferred": "inferred", "estimated": "estimated"}
PANEL_HEIGHT = 250
VALUES = ("point", "median", "lo_50", "hi_50", "lo_90", "hi_90")


def _hide(frame: pd.DataFrame, mask) -> pd.DataFrame:
    """Blank the forecast where mask (closed days): the line breaks instead of dropping to 0."""
    frame = frame.copy()
    frame.loc[np.asarray(mask, bool), list(VALUES)] = np.nan
    return frame


def _runs(dates: pd.Series, flags: pd.Series):
    """(first, last) date of each run of consecutive flagged days."""
    flags = flags.to_numpy(bool)
    if not flags.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    d = pd.to_datetime(dates).tolist()
    return [(d[a], d[b - 1]) for a, b in zip(edges[::2], edges[1::2])]


def _shade(dates, flags, fill, row) -> list[dict]:
    half = pd.Timedelta(hours=12)
    return [band_shape(row, first - half, last + half, fill) for first, last in _runs(dates, flags)]


def band_polygons(x: pd.Series, lo: pd.Series, hi: pd.Series):
    """One closed polygon per run of days with a forecast, separated by None: a band with gaps
    (closed days) that fill="toself" draws without bridging the gaps."""
    ok = (lo.notna() & hi.notna()).to_numpy()
    xs, ys = [], []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        seg_x = list(x.iloc[a:b])
        xs += seg_x + seg_x[::-1] + [None]
        ys += list(hi.iloc[a:b]) + list(lo.iloc[a:b])[::-1] + [None]
    return xs, ys


def _interval_bands(fig, part: pd.DataFrame, row: int, legend: bool) -> None:
    x = part["date"]
    for level, alpha in ((90, 0.2), (50, 0.4)):
        xs, ys = band_polygons(x, part[f"lo_{level}"], part[f"hi_{level}"])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line=dict(width=0),
                fill="toself",
                fillcolor=rgba(SERIES_COLOUR, alpha),
                name=f"{level}% interval",
                legendgroup=f"b{level}",
                showlegend=legend,
                hoverinfo="skip",
            ),
            row,
            1,
        )


def _bands(fig, part: pd.DataFrame, row: int, legend: bool, mean_label: str = "Forecast mean"):
    """The 90 % and 50 % bands, mean, median and actual sales of one panel."""
    _interval_bands(fig, part, row, legend)
    x = part["date"]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=part["point"],
            mode="lines",
            name=mean_label,
            line=dict(color=SERIES_COLOUR, width=1.6),
            legendgroup="mean",
            showlegend=legend,
            customdata=np.stack([part["median"], part["lo_90"], part["hi_90"]], axis=-1),
            hovertemplate="%{x|%a %d %b %Y}<br>mean %{y:,.0f}<br>median %{customdata[0]:,.0f}<br>"
            "90%: %{customdata[1]:,.0f}–%{customdata[2]:,.0f}<extra></extra>",
        ),
        row,
        1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=part["median"],
            mode="lines",
            name="Median",
            line=dict(color=SERIES_COLOUR, width=1, dash="dot"),
            legendgroup="median",
            showlegend=legend,
            hoverinfo="skip",
        ),
        row,
        1,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=part["y"],
            mode="markers",
            name="Actual sales",
            marker=dict(color=ACTUAL_COLOUR, size=4),
            legendgroup="actual",
            showlegend=legend,
            hovertemplate="%{x|%a %d %b %Y}<br>actual %{y:,.0f}<extra></extra>",
        ),
        row,
        1,
    )


def _fill(base: str, alpha_factor: float) -> str:
    head, alpha = base.rsplit(",", 1)
    return f"{head},{float(alpha.rstrip(')')) * alpha_factor:.3f})"


def _legend_swatches(fig, ahead=()):
    """Swatches of the shadings: the data's, then those of the days ahead by source."""
    swatches = [("Promo day", PROMO_FILL), ("State holiday", HOLIDAY_FILL)]
    for kind, base, source in ahead:
        swatches.append((f"{kind} ahead ({AHEAD_WORDS[source]})", _fill(base, 2.2 * AHEAD_ALPHA[source])))
    for name, colour in swatches:
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=name,
                marker=dict(size=12, symbol="square", color=colour, line=dict(width=1, color=colour)),
            )
        )


def _shade_ahead(part: pd.DataFrame, row: int, seen: set) -> list[dict]:
    """Promo days and holidays after the data, shaded by where they came from (part's `source`)."""
    shapes = []
    for source, alpha in AHEAD_ALPHA.items():
        from_source = (part["source"] == source).to_numpy()
        for kind, column, base in (("Promo", "promo", PROMO_FILL), ("Holiday", "state_holiday", HOLIDAY_FILL)):
            flags = part[column].astype(bool).to_numpy() & from_source
            if flags.any():
                seen.add((kind, base, source))
                fill = _fill(base, 2.2 * alpha)
                shapes += _shade(part["date"], pd.Series(flags), fill, row)
    return shapes


def _data_end(data_end, rows: int) -> list[dict]:
    if data_end is None:
        return []
    return [vline_shape(row, pd.Timestamp(data_end), NEUTRAL_GREY) for row in range(1, rows + 1)]


def forecast_figure(frame: pd.DataFrame, stores: list, y_label: str, data_end=None, x_range=None) -> go.Figure:
    """One panel per store (shared date axis), each with its own sales scale."""
    n = len(stores)
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.35 / max(n, 1)),
        subplot_titles=[f"Store {s}" for s in stores],
    )
    shapes, ahead = [], set()
    for row, store in enumerate(stores, start=1):
        part = frame[frame["store"] == store]
        past = part["source"].eq("data") if "source" in part else pd.Series(True, index=part.index)
        shapes += _shade(part["date"], part["promo"].astype(bool) & past, PROMO_FILL, row)
        shapes += _shade(part["date"], part["state_holiday"].astype(bool) & past, HOLIDAY_FILL, row)
        if "source" in part:
            shapes += _shade_ahead(part, row, ahead)
        _bands(fig, _hide(part, ~part["open"]), row, legend=row == 1)
        expected = part["expected_closed"].astype(bool)
        for name, days, symbol in (
            ("Closed", part[~part["open"] & ~expected], "x-thin"),
            ("Expected closed", part[expected], "circle-open"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=days["date"],
                    y=np.zeros(len(days)),
                    mode="markers",
                    name=name,
                    marker=dict(symbol=symbol, size=7, color=NEUTRAL_GREY, line=dict(width=1.5, color=NEUTRAL_GREY)),
                    showlegend=row == 1,
                    legendgroup=name,
                    hovertemplate="%{x|%a %d %b %Y}: " + name.lower() + "<extra></extra>",
                ),
                row,
                1,
            )
    _legend_swatches(fig, sorted(ahead, key=lambda a: (a[0], list(AHEAD_ALPHA).index(a[2]))))
    fig.update_layout(shapes=shapes + _data_end(data_end, n))
    fig.update_yaxes(rangemode="tozero", tickformat="~s")
    fig.update_xaxes(showticklabels=True, range=x_range)
    fig.update_annotations(font_size=13)
    fig.add_annotation(
        text=y_label, textangle=-90, xref="paper", yref="paper", x=-0.065, y=0.5, showarrow=False, font=dict(size=13)
    )
    fig.update_layout(
        height=90 + PANEL_HEIGHT * n,
        margin=dict(l=80, r=10, t=60, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0 + 40 / (90 + PANEL_HEIGHT * n), x=0),
        hovermode="closest",
    )
    return fig


def total_figure(total: pd.DataFrame, n_stores: int, y_label: str, data_end=None, x_range=None):
    fig = make_subplots(rows=1, cols=1)
    shown = _hide(total, total["hi_90"] <= 0)  # days every store is closed
    _bands(fig, shown.assign(y=shown["y"].where(shown["y"] > 0)), 1, legend=True)
    fig.update_layout(shapes=_data_end(data_end, 1))
    fig.update_yaxes(rangemode="tozero", tickformat="~s", title_text=y_label)
    fig.update_xaxes(range=x_range)
    fig.update_layout(
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        title=dict(text=f"Sum over {n_stores} stores", font_size=14),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0.3),
    )
    return fig


def day_density_figure(samples: np.ndarray, actual: float | None, title: str, x_label: str) -> go.Figure:
    lo, hi = np.percentile(samples, [0.5, 99.5])
    shown = samples[(samples >= lo) & (samples <= hi)]
    fig = go.Figure(
        go.Histogram(
            x=shown,
            nbinsx=60,
            histnorm="probability density",
            marker_color=rgba(SERIES_COLOUR, 0.7),
            name="posterior predictive",
            hovertemplate="%{x}<extra></extra>",
        )
    )
    p5, p50, p95 = np.percentile(samples, [5, 50, 95])
    for value, text, dash in ((p5, "5%", "dot"), (p50, "median", "dash"), (p95, "95%", "dot")):
        fig.add_vline(
            x=value,
            line=dict(color=SERIES_COLOUR, dash=dash, width=1.2),
            annotation_text=text,
            annotation_position="top",
        )
    if actual is not None and np.isfinite(actual):
        fig.add_vline(
            x=actual,
            line=dict(color=ACTUAL_COLOUR, width=2.5),
            annotation_text="actual",
            annotation_position="bottom right",
        )
    fig.update_xaxes(title_text=x_label, tickformat="~s")
    fig.update_yaxes(showticklabels=False, title_text="density")
    fig.update_layout(
        height=320, margin=dict(l=10, r=10, t=50, b=10), showlegend=False, title=dict(text=title, font_size=14)
    )
    return fig
