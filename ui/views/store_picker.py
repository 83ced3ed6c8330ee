"""The Stores page's widgets: store filters, the filtered table, the picks, their sales history.

Widgets whose options depend on the data carry the cube fingerprint in their key, so new data
starts them fresh instead of leaving a stale value outside the new options. Filters use
persist_state="session": they are still set when the user comes back to the page.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.data.summaries import GAP_DAYS
from ui.charts import sales, style
from ui.session import loaders, state

MAX_PANELS = 12  # small multiples drawn at once
ANY, YES, NO = "Any", "Yes", "No"


def parse_id_query(text: str) -> set[int] | None:
    """'1, 5-9 262' -> {1, 5, 6, 7, 8, 9, 262}; blank -> None (no filter). Raises ValueError."""
    tokens = [t for t in re.split(r"[,\s;]+", text.strip()) if t]
    if not tokens:
        return None
    ids: set[int] = set()
    for token in tokens:
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", token)
        if not match:
            raise ValueError(f"Store ids: '{token}' is not a number or a range like 5-9.")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first or last - first > 100_000:
            raise ValueError(f"Store ids: '{token}' is not a range from a smaller to a larger id.")
        ids.update(range(first, last + 1))
    return ids


def store_filters(table: pd.DataFrame, fingerprint: str, kind: str) -> pd.DataFrame:
    key = f"w.filter.{fingerprint[:10]}"
    cols = st.columns([1, 1, 1, 2])
    types = cols[0].multiselect(
        "Store type", sorted(table["StoreType"].unique()), placeholder="All", key=f"{key}.type", persist_state="session"
    )
    assortments = cols[1].multiselect(
        "Assortment",
        sorted(table["Assortment"].unique()),
        placeholder="All",
        key=f"{key}.assortment",
        persist_state="session",
    )
    promo2 = cols[2].segmented_control(
        "Promo2", [ANY, YES, NO], default=ANY, required=True, key=f"{key}.promo2", persist_state="session"
    )
    query = cols[3].text_input("Store ids", placeholder="e.g. 1, 5-9, 262", key=f"{key}.ids", persist_state="session")
    keep = np.ones(len(table), bool)
    if types:
        keep &= table["StoreType"].isin(types).to_numpy()
    if assortments:
        keep &= table["Assortment"].isin(assortments).to_numpy()
    if promo2 != ANY:
        keep &= (table["Promo2"] == (promo2 == YES)).to_numpy()
    try:
        ids = parse_id_query(query)
    except ValueError as exc:
        st.error(str(exc))
        ids = None
    if ids is not None:
        keep &= table["Store"].isin(ids).to_numpy()
    keep &= _sales_level_mask(table, key, kind)
    return table[keep]


def _sales_level_mask(table: pd.DataFrame, key: str, kind: str) -> np.ndarray:
    means = table["MeanSales"].dropna()
    if means.empty:
        return np.ones(len(table), bool)
    step = 10 ** max(0, math.floor(math.log10(max(means.max() - means.min(), 1) / 100)))
    lo, hi = math.floor(means.min() / step) * step, math.ceil(means.max() / step) * step
    if hi <= lo:
        return np.ones(len(table), bool)
    label = style.sales_axis_label(kind).replace("Sales", "Mean sales", 1)
    chosen = st.slider(
        f"{label}, over observed days", lo, hi, (lo, hi), step=step, key=f"{key}.sales", persist_state="session"
    )
    if tuple(chosen) == (lo, hi):
        return np.ones(len(table), bool)
    return table["MeanSales"].between(*chosen).to_numpy()


def store_table(filtered: pd.DataFrame, kind: str) -> list[int]:
    """The filtered stores as a table with row selection; returns the selected store ids."""
    ids = filtered["Store"].tolist()
    unit = style.CURRENCY_KINDS.get(kind, "")
    event = st.dataframe(
        filtered,
        hide_index=True,
        height=300,
        on_select="rerun",
        selection_mode="multi-row",
        # A new key when the rows change: a selection never points at rows of an older filter.
        key=f"w.store_table.{hash(tuple(ids))}",
        column_config={
            "Store": st.column_config.NumberColumn("Store", format="%d"),
            "StoreType": "Type",
            "Promo2": "Promo2",
            "MeanSales": st.column_config.NumberColumn(
                f"Mean sales ({unit}/day)" if unit else "Mean sales per day", format="localized"
            ),
            "ObservedDays": "Observed days",
            "ClosedDays": "Closed days",
            "NoRowDays": "Days without a row",
        },
    )
    return [ids[i] for i in event.selection.rows]


def pick_actions(candidates: list[int], table_selection: list[int]) -> None:
    """Buttons that change the picks. Handled inline, before the picker is drawn in this run, so
    they act on this run's filters and sample settings (a callback would see the last run's)."""
    cols = st.columns([1.4, 0.8, 0.8, 1.2, 1], vertical_alignment="bottom")
    picked = set(state.selected_stores())
    new = [i for i in table_selection if i not in picked]
    label = (
        f"Add {len(new)} selected store{'s' if len(new) != 1 else ''}"
        if new or not table_selection
        else "Selected stores are picked"
    )
    add = cols[0].button(label, width="stretch", disabled=not new, key="w.add_selected")
    n = int(cols[1].number_input("Sample size", 1, 200, 6, key="w.sample_n"))
    seed = int(cols[2].number_input("Seed", 0, 1_000_000, 0, key="w.sample_seed"))
    sample = cols[3].button(
        f"Random sample of {min(n, len(candidates))}",
        width="stretch",
        disabled=not candidates,
        help="Replaces the picks with a reproducible sample of the filtered stores",
    )
    clear = cols[4].button("Clear picks", width="stretch")
    if add:
        state.set_selected_stores([*state.selected_stores(), *new])
        st.rerun()  # the button's label counts the picks this run has just changed
    elif sample:
        drawn = np.random.default_rng(seed).choice(candidates, min(n, len(candidates)), replace=False)
        state.set_selected_stores(sorted(drawn.tolist()))
    elif clear:
        state.set_selected_stores([])


def store_picker(all_ids: list[int]) -> list[int]:
    state.seed_widget(state.W_STORE_PICKER, state.selected_stores(all_ids))
    return st.multiselect(
        "Picked stores (kept across pages)",
        all_ids,
        key=state.W_STORE_PICKER,
        on_change=_sync_picks,
        placeholder="Type store ids, add rows from the table, or draw a sample",
    )


def _sync_picks() -> None:
    st.session_state[state.SELECTED_STORES] = list(st.session_state[state.W_STORE_PICKER])


def history_panel(cube, picks: list[int], kind: str) -> None:
    if not picks:
        st.info("Pick stores above to see their sales history.", icon=":material/arrow_upward:")
        return
    weekly = st.toggle(
        "Weekly means",
        value=cube.n_days > 120,
        key="w.weekly",
        persist_state="session",
        help="Mean sales per observed day of each week",
    )
    shown = picks[:MAX_PANELS]
    frame = loaders.store_history(cube.fingerprint, cube, tuple(shown), weekly)
    figure = sales.history_figure(frame, style.sales_axis_label(kind, weekly))
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False})
    extra = f" Showing the first {MAX_PANELS} of {len(picks)} picks." if len(picks) > MAX_PANELS else ""
    st.caption(
        f"Closed days and days without a row are left out; the line breaks over gaps of "
        f"more than {GAP_DAYS} days.{extra}"
    )
