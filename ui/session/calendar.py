"""The calendar ahead that forecasts follow: what is known about the days after the data.

Two sources, the first winning where both know a cell: a calendar the user gave (Kaggle's
test.csv layout: open days, promo, holidays, and its Ids), and public holidays inferred from each
store's recorded holidays with school holidays as a year before (bhm_core.data.public_holidays).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from bhm_core.data.cube import SalesCube
from bhm_core.errors import BhmError

UPLOADED = "bhm.calendar"  # where the Data page keeps a calendar the user gave (a FutureCalendar)


def uploaded():
    """The calendar the user gave on the Data page, or None. The one place that reads it."""
    return st.session_state.get(UPLOADED)


@st.cache_data(max_entries=16, show_spinner="Inferring the public holidays ahead…")
def _inferred(fingerprint: str, first: str, last: str, _cube: SalesCube):
    from bhm_core.data.public_holidays import calendar_ahead, infer_regions

    matches = infer_regions(_cube)
    if not any(m.region for m in matches):
        return None, ()
    regions = tuple(sorted({m.region for m in matches if m.region}))
    return calendar_ahead(_cube, matches, np.datetime64(first), np.datetime64(last)), regions


def plan(cube: SalesCube, first, last):
    """(the calendar of [first, last] the forecasts follow or None, a sentence saying what it is)."""
    given = uploaded()
    try:
        inferred, regions = _inferred(cube.fingerprint, str(first), str(last), cube)
    except BhmError:
        inferred, regions = None, ()
    parts = []
    if given is not None:
        parts.append("the calendar given on the Data page where it has a day")
    if inferred is not None:
        shown = ", ".join(regions[:6]) + ("…" if len(regions) > 6 else "")
        parts.append(
            f"public holidays inferred from each store's recorded holidays (German states {shown}) and "
            "school holidays as on the same days a year before (estimated)"
        )
    if not parts:
        return None, "no calendar: no promo, no holidays, closed on each store's usual closing weekdays"
    calendar = inferred if given is None else given.over(inferred)
    text = "; else ".join(parts) + "; no promo unless a calendar plans one"
    return calendar, text
