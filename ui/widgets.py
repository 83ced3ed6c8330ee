"""Widgets shared by pages: sidebar status, dataset summary, store filters, picks, history chart.

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

from . import charts, data, state

MAX_PANELS = 12  # small multiples drawn at once
ANY, YES, NO = "Any", "Yes", "No"


def sidebar_status(slot) -> None:
    """Data in use and number of picks, into an st.empty() slot in the sidebar."""
    n_picked = len(state.selected_stores())
    with slot.container():
        st.caption(f"**Data:** {state.current_source().label}")
        st.caption(f"**Picked stores:** {n_picked}" if n_picked else "No stores picked yet (see Stores).")
        fit, job = st.session_state.get(state.FIT), st.session_state.get(state.FIT_JOB)
        if job is not None and not job.done:
            st.caption(f"**Fitting** {job.n_stores} stores… (see Model & fit)")
        if fit is not None:
            st.caption(
                f"**Fit in use:** {len(fit.result.store_ids)} stores, "
                f"{len(fit.result.losses):,} steps" + ("" if fit.saved else " (not saved)")
            )


def dataset_summary(cube) -> None:
    s = cube.summary()
    cells = max(1, s["n_stores"] * s["n_days"])
    top, bottom = st.columns(4), st.columns(4)
    top[0].metric("Stores", f"{s['n_stores']:,}", border=True)
    top[1].metric("Days", f"{s['n_days']:,}", border=True)
    top[2].metric("First day", s["first_date"], border=True)
    top[3].metric("Last day", s["last_date"], border=True)
    bottom[0].metric("Rows", f"{s['n_rows']:,}", border=True, help="Store-day rows in the data.")
    bottom[1].metric(
        "Observed cells",
        f"{s['n_observed']:,}",
        border=True,
        help=f"{s['n_observed'] / cells:.1%} of stores × days: open with sales > 0. "
        "Only these are observations for the model.",
    )
    bottom[2].metric(
        "Closed days", f"{s['n_closed']:,}", border=True, help="Rows with Open = 0: not observations, never zeros."
    )
    bottom[3].metric(
        "Cells without a row",
        f"{s['n_missing_rows']:,}",
        border=True,
        help=f"{s['n_missing_rows'] / cells:.1%} of stores × days: gaps, late openings. Not observations.",
    )
    gappy = int((data.store_table(cube.fingerprint, cube)["NoRowDays"] > 0).sum())
    notes = [f"{gappy:,} store(s) have days without a row."] if gappy else []
    if s["n_open_not_observed"]:
        notes.append(
            f"{s['n_open_not_observed']:,} open day(s) with zero or blank sales are not counted as observations."
        )
    if notes:
        st.caption(" ".join(notes))


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
    label = charts.sales_axis_label(kind).replace("Sales", "Mean sales", 1)
    chosen = st.slider(
        f"{label}, over observed days", lo, hi, (lo, hi), step=step, key=f"{key}.sales", persist_state="session"
    )
    if tuple(chosen) == (lo, hi):
        return np.ones(len(table), bool)
    return table["MeanSales"].between(*chosen).to_numpy()


def store_table(filtered: pd.DataFrame, kind: str) -> list[int]:
    """The filtered stores as a table with row selection; returns the selected store ids."""
    ids = filtered["Store"].tolist()
    unit = charts.CURRENCY_KINDS.get(kind, "")
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
    add = cols[0].button(f"Add {len(table_selection)} selected row(s)", width="stretch", disabled=not table_selection)
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
        state.set_selected_stores([*state.selected_stores(), *table_selection])
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
    frame = data.store_history(cube.fingerprint, cube, tuple(shown), weekly)
    figure = charts.history_figure(frame, charts.sales_axis_label(kind, weekly))
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False})
    extra = f" Showing the first {MAX_PANELS} of {len(picks)} picks." if len(picks) > MAX_PANELS else ""
    st.caption(
        f"Closed days and days without a row are left out; the line breaks over gaps of "
        f"more than {charts.GAP_DAYS} days.{extra}"
    )
