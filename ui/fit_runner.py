"""The Fit button, the live progress of a background fit (with Cancel), and the current fit.

While a fit runs, a fragment polls it every POLL_SECONDS: it redraws only itself (progress bar,
loss so far, Cancel), and when the fit has ended it reruns the whole page, which collects the
result (ui.fitting.collect). Cancel sets the job's Event; the engine stops at the next chunk.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from . import charts_fit, data, fitting, state

POLL_SECONDS = 0.5
NOTICE = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


def fit_button(cube, store_ids, config, priors) -> None:
    running = fitting.job() is not None
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
        fitting.start(cube, store_ids, config, priors)
        if fitting.job() is not None:
            st.rerun()  # redraw with the button disabled and the progress showing


def progress() -> None:
    fitting.collect()
    if fitting.job() is not None:
        _poll()


@st.fragment(run_every=POLL_SECONDS)
def _poll() -> None:
    job = fitting.job()
    if job is None or job.done:
        st.rerun()  # the whole page: progress() collects the result and stops polling
    total = job.config.steps
    with st.container(border=True):
        if job.cancelling:
            text = f"Cancelling after step {job.step:,}…"
        elif job.step == 0:
            text = f"Preparing and compiling ({job.elapsed:.0f} s; only the first fit of a size compiles)"
        else:
            text = f"Step {job.step:,} of {total:,} · {job.elapsed:.0f} s · loss {job.trace[-1][1]:,.1f}"
        st.progress(min(job.step / total, 1.0), text=text)
        if job.trace:
            steps, losses = zip(*job.trace)
            st.plotly_chart(
                charts_fit.loss_figure(steps, losses, title="Loss so far"),
                width="stretch",
                config={"displayModeBar": False},
                key="fit.live_loss",
            )
        st.button("Cancel", icon=":material/stop:", on_click=job.cancel, disabled=job.cancelling, key="fit.cancel")


def notice() -> None:
    """What the last fit attempt did; a partial fit can still be used."""
    note = fitting.notice()
    if note is not None:
        NOTICE[note.kind](note.text)
    partial = st.session_state.get(state.FIT_PARTIAL)
    if partial is not None:
        st.button(
            f"Use the partial fit anyway ({len(partial.result.losses):,} steps, not saved)",
            on_click=fitting.use_partial,
            icon=":material/call_missed_outgoing:",
        )


def current_fit(fit) -> None:
    if fit is None:
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
    figure = data.figure(
        f"fit.loss|{fit.key}|{len(losses)}", lambda: charts_fit.loss_figure(np.arange(1, len(losses) + 1), losses)
    )
    st.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key="fit.loss")
