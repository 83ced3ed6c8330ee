"""Cached results of the History page: a fit's chain of parents, how two fits' forecasts of the
same weeks moved, and the drift checks of a fit on the data in use. Keyed by fit keys (which name
a fit's content) and the data's fingerprint, so sessions share them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.data.cube import SalesCube
from ui.session import fits, loaders


def chain(key: str) -> pd.DataFrame:
    """The fit and its parents, newest first, with each one's holdout scores when a gate made it."""
    from bhm_core.history import lineage_chain

    store = fits.fit_store()
    rows = []
    for link in lineage_chain(store, key):
        gate = {}
        if not link.get("missing"):
            gate = ((store.record(link["fit"]).get("lineage") or {}).get("gate") or {}).get("challenger") or {}
        rows.append(
            {
                **link,
                "missing": bool(link.get("missing")),
                "how": link.get("relation") or ("no longer saved" if link.get("missing") else "fitted from scratch"),
                "rmspe": gate.get("rmspe"),
                "coverage_50": gate.get("coverage_50"),
                "coverage_90": gate.get("coverage_90"),
            }
        )
    return pd.DataFrame(rows)


@st.cache_data(max_entries=32, show_spinner="Forecasting the same weeks with both fits…")
def movement(
    keys: tuple[str, str], fingerprint: str, store: int, first, last, _cube: SalesCube
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from bhm_core.history import movement as compare

    root = str(fits.fit_store().root)
    compared = {key[:12]: loaders.saved_fit(root, key) for key in keys}
    return compare(compared, _cube, store, first, last)


@st.cache_data(max_entries=16, show_spinner="Checking the recent days against the fit…")
def drift(key: str, fingerprint: str, recent: int, _result, _cube: SalesCube) -> dict:
    from bhm_core.evaluation.drift import drift as check

    return check(_result, _cube, recent)
