"""What every chart shares: colours fixed per meaning (a status is always the same colour, on every
page, in light and dark themes), axis titles that carry units, and shape helpers.
"""

from __future__ import annotations

STATUS_COLOURS = ("#3b82c4", "#f2b134", "#9aa5b1", "#d6453d")  # of bhm_core.data.summaries.STATUS_LABELS
SERIES_COLOUR = "#1f6feb"
NEUTRAL_GREY = "#9aa5b1"  # reference lines, closed days
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


def stacked_panels(fig, y_label: str, height: int, top: int, legend_gap: int, hovermode: str) -> None:
    """The layout of a column of panels sharing one y label: sales from zero, SI ticks, the
    label once at the left, the legend above the first panel."""
    fig.update_yaxes(rangemode="tozero", tickformat="~s")
    fig.update_annotations(font_size=13)
    fig.add_annotation(
        text=y_label, textangle=-90, xref="paper", yref="paper", x=-0.06, y=0.5, showarrow=False, font=dict(size=13)
    )
    fig.update_layout(
        height=height,
        margin=dict(l=80, r=10, t=top, b=10),
        hovermode=hovermode,
        legend=dict(orientation="h", yanchor="bottom", y=1.0 + legend_gap / height, x=0),
    )
