"""The calendar ahead that forecasts follow: what is known about the days after the data.

Two sources, the first winning where both know a cell: a calendar the user gave (Kaggle's
test.csv layout: open days, promo, holidays, and its Ids; uploaded on the Data page or the data
folder's own test.csv), and public holidays inferred from each store's recorded holidays with
school holidays as a year before (bhm_core.data.public_holidays, as the command line and the
server use them).
"""

from __future__ import annotations

import streamlit as st

from bhm_core.data.cube import SalesCube
from bhm_core.errors import BhmError
from ui.session import loaders


@st.cache_resource(max_entries=16, show_spinner="Inferring the public holidays ahead…")
def _inferred(fingerprint: str, _cube: SalesCube):
    from bhm_core.data.public_holidays import with_public_holidays

    inferred, matches = with_public_holidays(_cube, None)
    return inferred, tuple(sorted({m.region for m in matches if m.region}))


def plan(cube: SalesCube):
    """(the calendar the forecasts past the data follow or None, a sentence saying what it is)."""
    given = loaders.current_calendar()
    try:
        inferred, regions = _inferred(cube.fingerprint, cube)
    except BhmError:
        inferred, regions = None, ()
    parts = []
    if given is not None:
        parts.append("the calendar given for the data where it has a day")
    if inferred is not None:
        shown = ", ".join(regions[:6]) + ("…" if len(regions) > 6 else "")
        parts.append(
            f"public holidays inferred from each store's recorded holidays (German states {shown}) and "
            "school holidays as on the same days a year before (estimated)"
        )
    if not parts:
        return None, "no calendar: no promo, no holidays, closed on each store's usual closing weekdays"
    calendar = inferred if given is None else given if inferred is None else given.over(inferred)
    text = "; else ".join(parts) + "; no promo unless a calendar plans one"
    return calendar, text
