"""Chart builders: cube or tidy frame in, Plotly figure out. No Streamlit calls here.

Colours are fixed per meaning (a status is always the same colour, on every page, in light and
dark themes); axis titles carry units.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from bhm_core.data.cube import CLOSED, OPEN, SalesCube

# Display codes of the status grid, in legend order.
STATUS_LABELS = ("Observed", "Open, no sales", "Closed", "No row")
STATUS_COLOURS = ("#3b82c4", "#f2b134", "#9aa5b1", "#d6453d")
SERIES_COLOUR = "#1f6feb"
NEUTRAL_GREY = "#9aa5b1"  # reference lines, closed days
GAP_DAYS = 14  # a longer run without observations breaks the line instead of bridging it
CURRENCY_KINDS = {"demo": "€", "kaggle-dir": "€"}  # Rossmann-like sources; own CSVs: unit unknown


def rgba(hex_colour: str, alpha: float) -> str:
    """'#1f6feb', 0.2 -> 'rgba(31,111,235,0.2)': translucent fills that work on light and dark."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def axis_refs(row: int) -> tuple[str, str]:
    """(xref, yref) of subplot row `row` (1-based) of a one-column make_subplots grid, the y
    reference spanning the panel's height."""
    suffix = "" if row == 1 else str(row)
    return f"x{suffix}", f"y{suffix} domain"


def band_shape(row: int, x0, x1, fill: str) -> dict:
    """A full-height shaded band in one panel, below the traces. Shapes are collected and set
    with one update_layout: add_vrect per band copies the whole layout each time (slow)."""
    xref, yref = axis_refs(row)
    return dict(
        type="rect", xref=xref, yref=yref, x0=x0, x1=x1, y0=0, y1=1, fillcolor=fill, line_width=0, layer="below"
    )


def vline_shape(row: int, x, colour: str, dash: str = "dash", width: float = 1) -> dict:
    xref, yref = axis_refs(row)
    return dict(
        type="line", xref=xref, yref=yref, x0=x, x1=x, y0=0, y1=1, line=dict(color=colour, width=width, dash=dash)
    )


def sales_axis_label(kind: str, weekly: bool = False) -> str:
    unit = CURRENCY_KINDS.get(kind)
    per_day = f"{unit}/day" if unit else "per day"
    return f"Sales ({per_day}, weekly mean)" if weekly else f"Sales ({per_day})"


def _display_codes(cube: SalesCube) -> np.ndarray:
    codes = np.full(cube.status.shape, 3, np.int8)  # no row (MISSING) unless overwritten
    codes[cube.status == CLOSED] = 2
    codes[(cube.status == OPEN) & ~cube.observed] = 1
    codes[cube.observed] = 0
    return codes


def _block_mode(codes: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Most frequent display code in each rows x cols block (padding never counts)."""
    s, t = codes.shape
    pad = np.full((math.ceil(s / rows) * rows, math.ceil(t / cols) * cols), -1, np.int8)
    pad[:s, :t] = codes
    blocks = pad.reshape(pad.shape[0] // rows, rows, pad.shape[1] // cols, cols)
    counts = np.stack([(blocks == k).sum(axis=(1, 3)) for k in range(len(STATUS_LABELS))])
    return counts.argmax(axis=0).astype(np.int8)


def status_grid(cube: SalesCube, max_days: int = 200, max_stores: int = 1200) -> dict:
    """Store x day status, coarsened to at most max_stores x max_days cells for drawing.

    Days are grouped into whole weeks (or multiples) once there are more than max_days of them.
    Each cell shows the status most days of its block have.
    """
    codes = _display_codes(cube)
    days = 1 if cube.n_days <= max_days else 7 * math.ceil(cube.n_days / max_days / 7)
    stores = max(1, math.ceil(cube.n_stores / max_stores))
    grid = _block_mode(codes, stores, days)
    ids = cube.store_ids
    starts = ids[::stores]
    ends = ids[np.minimum(np.arange(len(starts)) * stores + stores - 1, len(ids) - 1)]
    labels = [str(a) if a == b else f"{a}–{b}" for a, b in zip(starts, ends)]
    return {"z": grid, "x": cube.dates[::days], "y": labels, "days_per_cell": days, "stores_per_cell": stores}


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


def history_frame(cube: SalesCube, store_ids: list, weekly: bool) -> pd.DataFrame:
    """Tidy Store, Date, Sales over observed days (closed and missing days dropped).

    Weekly: mean sales per observed day of each week (Monday start), so the unit stays per day.
    A NaN row after every gap of more than GAP_DAYS makes the chart break the line there.
    """
    rows = cube.store_rows(store_ids)
    observed = cube.observed[rows]
    r, c = np.nonzero(observed)
    frame = pd.DataFrame(
        {
            "Store": cube.store_ids[rows][r],
            "Date": cube.dates[c].astype("datetime64[ns]"),
            "Sales": cube.sales[rows][r, c].astype(np.float64),
        }
    )
    if weekly and not frame.empty:
        frame["Date"] = frame["Date"].dt.to_period("W-SUN").dt.start_time
        frame = frame.groupby(["Store", "Date"], as_index=False, sort=True)["Sales"].mean()
    gap = frame.groupby("Store")["Date"].diff() > pd.Timedelta(days=GAP_DAYS)
    breaks = frame.loc[gap, ["Store", "Date"]].assign(Date=lambda f: f["Date"] - pd.Timedelta(days=1), Sales=np.nan)
    frame = pd.concat([frame, breaks]).sort_values(["Store", "Date"], kind="stable")
    return frame.reset_index(drop=True)


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
