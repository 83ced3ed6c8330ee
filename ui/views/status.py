"""What the sidebar and the Data page say about the data in use: the sidebar status (data, picks,
a running fit, the fit in use) and the dataset summary."""

from __future__ import annotations

import streamlit as st

from ui.session import in_use, loaders, state


def sidebar_status(slot) -> None:
    """Data in use and number of picks, into an st.empty() slot in the sidebar. Also renews this
    session's claim on its current fit, which new data or a new fit may just have changed."""
    in_use.sync()
    n_picked = len(state.selected_stores())
    with slot.container():
        st.caption(f"**Data:** {state.current_source().label}")
        st.caption(
            f"**Picked stores:** {n_picked}"
            if n_picked
            else f"No stores picked: a fit takes the first {state.DEFAULT_STORES} (see Stores)."
        )
        job = st.session_state.get(state.FIT_JOB)
        if job is not None and not job.done:
            st.caption(f"**Fitting** {job.n_stores} stores: {_progress(job)} (see Model & fit)")
        fit = None
        if st.session_state.get(state.FIT) is not None:
            from ui.session import fits  # loads the numerical stack, which a fit in session has loaded

            fit = fits.shown()
        if fit is not None:
            st.caption(
                f"**Fit in use:** {len(fit.result.store_ids)} stores, "
                f"{len(fit.result.losses):,} steps" + ("" if fit.saved else " (not saved)")
            )
        elif job is None or job.done:
            st.caption("No fit in use yet (see Model & fit).")


def _progress(job) -> str:
    stage = job.stage()
    return f"step {job.step:,} of {job.total_steps:,}" if stage == "Fitting" else stage.lower()


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
    gappy = int((loaders.store_table(cube.fingerprint, cube)["NoRowDays"] > 0).sum())
    notes = [f"{gappy:,} store(s) have days without a row."] if gappy else []
    if s["n_open_not_observed"]:
        notes.append(
            f"{s['n_open_not_observed']:,} open day(s) with zero or blank sales are not counted as observations."
        )
    if notes:
        st.caption(" ".join(notes))
