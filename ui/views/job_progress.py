"""The one progress panel of background work (a fit, a backtest, a cold-start trial) and its last
notice, for any ui.session.lifecycle.Lifecycle.

While a job runs, a fragment polls it every POLL_SECONDS: it redraws only itself (progress bar,
loss so far, Cancel), and when the job has ended it reruns the whole page, which collects the
outcome (Lifecycle.collect). Cancel sets the job's Event; the engine stops at the next chunk.
"""

from __future__ import annotations

import streamlit as st

from ui.charts import fit as fit_charts
from ui.session.jobs import BackgroundJob
from ui.session.lifecycle import Lifecycle

POLL_SECONDS = 0.5
SHOW = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


def progress(lifecycle: Lifecycle) -> None:
    """Collect a job that has ended; while one runs, its panel."""
    lifecycle.collect()
    if lifecycle.job() is not None:
        _poll(lifecycle)


WHAT_NOW = {
    "Preparing": "the start: least squares on log sales",
    "Compiling": "the fit program for this size; once per size and server",
    "Saving": "the fit, so that it loads at once next time",
    "Drawing forecasts": "of the Forecast page's first view (compiles once per server)",
}


def status_text(job: BackgroundJob) -> str:
    """The named phase (Preparing, Compiling, Fitting, then what follows the steps), with what a
    staged job (an evaluation) is doing and how far it is."""
    stage, seconds = job.stage(), f"{job.elapsed:.0f} s"
    where = f"{job.phase} · " if job.phase and stage in ("Preparing", "Compiling", "Fitting") else ""
    if stage == "Cancelling":
        return f"Cancelling after step {job.step:,}…"
    if stage == "Fitting":
        return (
            f"{where}**Fitting**: step {job.step:,} of {job.total_steps:,} · {seconds} · loss {job.trace[-1][1]:,.1f}"
        )
    if stage in WHAT_NOW:
        return f"{where}**{stage}** {WHAT_NOW[stage]} · {seconds}"
    return f"**{stage}** · {seconds}"


@st.fragment(run_every=POLL_SECONDS)
def _poll(lifecycle: Lifecycle) -> None:
    job = lifecycle.job()
    if job is None or job.done:
        st.rerun()  # the whole page: progress() collects the outcome and stops polling
    with st.container(border=True):
        st.progress(min(job.step / job.total_steps, 1.0), text=status_text(job))
        if job.trace and job.step < job.total_steps:  # after a stage's last step, what follows has no loss
            steps, losses = zip(*job.trace)
            st.plotly_chart(
                fit_charts.loss_figure(steps, losses, title="Loss so far"),
                width="stretch",
                config={"displayModeBar": False},
                key=f"{lifecycle.name}.live_loss",
            )
        st.button(
            "Cancel",
            icon=":material/stop:",
            on_click=job.cancel,
            disabled=job.cancelling,
            key=f"{lifecycle.name}.cancel",
        )


def show_notice(lifecycle: Lifecycle) -> None:
    note = lifecycle.notice()
    if note is not None:
        SHOW[note.kind](note.text)
