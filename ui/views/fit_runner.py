"""The Fit button, the fit's progress and notice (the one job panel of ui.views.job_progress), the
partial fit a cancelled or diverged fit leaves, and the current fit with its loss curve."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui.charts import fit as fit_charts
from ui.session import figures, fits, state
from ui.views import job_progress


def fit_button(cube, store_ids, config, priors) -> None:
    running = fits.job() is not None
    label = f"Fit {len(store_ids)} store{'s' if len(store_ids) != 1 else ''}"
    help_text = (
        "A fit is running"
        if running
        else "Fix the settings marked above first"
        if config is None or priors is None
        else "Loads the saved fit instantly when the same data, priors and settings were fitted before"
    )
    if st.button(
        label,
        type="primary",
        icon=":material/play_arrow:",
        help=help_text,
        disabled=running or config is None or priors is None,
    ):
        fits.start(cube, store_ids, config, priors)
        if fits.job() is not None:
            st.rerun()  # redraw with the button disabled and the progress showing


def progress() -> None:
    job_progress.progress(fits.LIFECYCLE)


def notice() -> None:
    """What the last fit attempt did; a partial fit can still be used."""
    job_progress.show_notice(fits.LIFECYCLE)
    partial = st.session_state.get(state.FIT_PARTIAL)
    if partial is not None:
        st.button(
            f"Use the partial fit anyway ({len(partial.result.losses):,} steps, not saved)",
            on_click=fits.use_partial,
            icon=":material/call_missed_outgoing:",
        )


def current_fit(fit) -> None:
    if fit is None:
        running = fits.job()
        if running is not None and not running.done:
            st.info(f"The first fit is running ({running_text(running)}); it becomes current when it is done.")
        else:
            st.info("No current fit yet: set the priors and settings, then press Fit.", icon=":material/info:")
        return
    row = st.container(horizontal=True, vertical_alignment="center")
    row.markdown(f"**Current fit:** {fit.summary()}")
    if fit.from_cache:
        row.badge(
            "From cache: instant" if fit.seconds is not None else "Reopened from history",
            icon=":material/bolt:",
            color="green",
        )
    elif not fit.saved:
        row.badge("Not saved", icon=":material/warning:", color="orange")
    else:
        row.badge(f"New fit: {fit.seconds:.1f} s", icon=":material/model_training:", color="blue")
    losses = np.asarray(fit.result.losses)
    figure = figures.figure(
        f"fit.loss|{fit.key}|{len(losses)}", lambda: fit_charts.loss_figure(np.arange(1, len(losses) + 1), losses)
    )
    st.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key="fit.loss")


def running_text(job) -> str:
    """'fitting 20 stores, step 50 of 100' / 'compiling the fit program for 20 stores'."""
    stage = job.stage()
    what = f"{job.n_stores} store{'s' if job.n_stores != 1 else ''}"
    if stage == "Fitting":
        return f"fitting {what}, step {job.step:,} of {job.total_steps:,}"
    return f"{stage.lower()}, {what}"
