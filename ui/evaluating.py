"""Backtests and cold-start trials as background jobs: content keys, start, collect, progress.

Both fit, so they run like a fit (ui.jobs, polled by a fragment, cancellable). A finished job puts
its Evaluation into the process-wide cache (ui.data.evaluations) under a key naming everything that
decides it, so a page that comes back, or another session asking the same, shows it at once.
The settings are those of the Model & fit page (read from its widgets' state).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import streamlit as st

from bhm_core import artifacts
from bhm_core.artifacts import CONFIG_FIELDS_NOT_IN_KEY
from bhm_core.errors import BhmError
from bhm_core.evaluation.backtest import EvaluationCancelled, backtest, coldstart
from bhm_core.model.config import FitConfig, Priors

from . import charts_fit, data, fitting, prior_editor, state, svi_settings
from .fitting import Notice
from .jobs import TaskJob

POLL_SECONDS = 0.5
NOTICE = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}
N_SAMPLES = 500
WHAT = {"backtest": "Backtest", "coldstart": "New-store trial"}


def model_settings() -> tuple[FitConfig | None, Priors | None]:
    """Priors and SVI settings of the Model & fit page, or (None, None) after saying what is wrong."""
    try:
        return svi_settings.current_config(), prior_editor.current_priors()
    except BhmError as exc:
        st.error(f"The settings on the Model & fit page are not valid: {exc}")
        st.page_link("pages/fit.py", label="Fix them on Model & fit", icon=":material/tune:")
        return None, None


def content_key(kind: str, **parts) -> str:
    def plain(value):
        if isinstance(value, FitConfig):
            return {k: v for k, v in value.to_dict().items() if k not in CONFIG_FIELDS_NOT_IN_KEY}
        if isinstance(value, Priors):
            return value.to_dict()
        if isinstance(value, np.ndarray):
            return value.tolist()
        return value if isinstance(value, (int, float, str, type(None))) else str(value)

    payload = json.dumps({"kind": kind, **{k: plain(v) for k, v in parts.items()}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def cached(key: str):
    return data.evaluations().get(key)


# ----------------------------------------------------------------------------------------------
# Jobs


def _job_key(kind: str) -> str:
    return f"{state.EVAL_JOB}.{kind}"


def job(kind: str) -> TaskJob | None:
    return st.session_state.get(_job_key(kind))


def _notify(kind: str, level: str, text: str) -> None:
    st.session_state[f"{state.EVAL_NOTICE}.{kind}"] = Notice(level, text)


def _start(kind: str, work, key: str, label: str, total_steps: int) -> None:
    if job(kind) is not None:
        return  # one at a time per kind and session
    data.compilation_cache()
    new = TaskJob(
        work, data.evaluations(), key=key, label=label, source=state.current_source(), total_steps=total_steps
    )
    st.session_state[_job_key(kind)] = new.start()
    st.session_state.pop(f"{state.EVAL_NOTICE}.{kind}", None)


def collect(kind: str) -> None:
    """A finished job becomes a notice (its Evaluation is already in the cache)."""
    done = job(kind)
    if done is None or not done.done:
        return
    del st.session_state[_job_key(kind)]
    if done.source != state.current_source():
        return
    error = done.error
    if error is None:
        _notify(kind, "success", f"{WHAT[kind]} done in {done.seconds:.1f} s ({done.label}).")
    elif isinstance(error, EvaluationCancelled):
        _notify(kind, "warning", f"{WHAT[kind]} {error}.")
    elif isinstance(error, (BhmError, NotImplementedError)):
        _notify(kind, "error", str(error) or type(error).__name__)
    else:
        _notify(
            kind,
            "error",
            f"The {WHAT[kind].lower()} failed unexpectedly ({type(error).__name__}: "
            f"{error}). The details are in the server log.",
        )


def notice(kind: str) -> None:
    note = st.session_state.get(f"{state.EVAL_NOTICE}.{kind}")
    if note is not None:
        NOTICE[note.kind](note.text)


def progress(kind: str) -> None:
    collect(kind)
    if job(kind) is not None:
        _poll(kind)


@st.fragment(run_every=POLL_SECONDS)
def _poll(kind: str) -> None:
    running = job(kind)
    if running is None or running.done:
        st.rerun()  # the whole page: progress() collects the result and stops polling
    with st.container(border=True):
        total = running.total_steps
        if running.cancelling:
            text = f"Cancelling after step {running.step:,}…"
        elif running.step == 0:
            text = f"{running.phase} ({running.elapsed:.0f} s; preparing and compiling)"
        else:
            text = (
                f"{running.phase}: step {running.step:,} of {total:,} · {running.elapsed:.0f} s · "
                f"loss {running.trace[-1][1]:,.1f}"
            )
        st.progress(min(running.step / total, 1.0), text=text)
        if running.trace and running.step < total:
            steps, losses = zip(*running.trace)
            st.plotly_chart(
                charts_fit.loss_figure(steps, losses, title="Loss so far"),
                width="stretch",
                config={"displayModeBar": False},
                key=f"{kind}.live_loss",
            )
        st.button(
            "Cancel", icon=":material/stop:", on_click=running.cancel, disabled=running.cancelling, key=f"{kind}.cancel"
        )


def _stages(work_job: TaskJob, phase: str, steps: int, then: str):
    """on_progress for one fit: after its last step the job says what comes next."""
    work_job.begin(phase, steps)

    def report(step, loss):
        work_job.progress(step, loss)
        if step >= steps:
            work_job.phase = then

    return report


# ----------------------------------------------------------------------------------------------
# Backtest


def backtest_key(cube, store_ids, cutoff, horizon: int, config: FitConfig, priors: Priors) -> str:
    return content_key(
        "backtest",
        data=cube.fingerprint,
        stores=[int(i) for i in store_ids],
        cutoff=str(cutoff),
        horizon=int(horizon),
        config=config,
        priors=priors,
        n_samples=N_SAMPLES,
    )


def start_backtest(cube, store_ids, cutoff, horizon: int, config: FitConfig, priors: Priors) -> None:
    key = backtest_key(cube, store_ids, cutoff, horizon, config, priors)
    ids = [int(i) for i in store_ids]

    def work(task: TaskJob):
        report = _stages(
            task,
            f"Fitting {len(ids)} stores on the days up to {cutoff}",
            config.steps,
            "Forecasting and running the baselines",
        )
        return backtest(
            cube,
            str(cutoff),
            int(horizon),
            stores=ids,
            seed=config.seed,
            config=config,
            priors=priors,
            n_samples=N_SAMPLES,
            on_progress=report,
            should_stop=task.should_stop,
        )

    _start("backtest", work, key, f"{len(ids)} stores, cutoff {cutoff}, {horizon} days", config.steps)


# ----------------------------------------------------------------------------------------------
# Cold start


def hierarchy_plan(cube, new_ids) -> tuple[object | None, list[int]]:
    """(current fit to reuse, or None; the stores the hierarchy is fitted on). The current fit is
    reused when it was made on these data and none of the new stores is in it."""
    new = {int(i) for i in new_ids}
    fit = fitting.current()
    if fit is not None and not new & set(fit.result.store_ids.tolist()) and fitting.matches_data(cube, fit.result):
        return fit, [int(i) for i in fit.result.store_ids]
    picked, _ = fitting.stores_to_fit(cube)
    others = [i for i in picked if i not in new]
    if not others:
        others = [int(i) for i in cube.store_ids if int(i) not in new][: fitting.DEFAULT_STORES]
    return None, others


def coldstart_key(cube, new_ids, known_days: int, horizon: int, hierarchy_key: str, config: FitConfig) -> str:
    return content_key(
        "coldstart",
        data=cube.fingerprint,
        new=sorted(int(i) for i in new_ids),
        known_days=int(known_days),
        horizon=int(horizon),
        hierarchy=hierarchy_key,
        config=config,
        n_samples=N_SAMPLES,
    )


def hierarchy_key(cube, reuse, others, config: FitConfig, priors: Priors) -> str:
    if reuse is not None:
        return reuse.key
    sub = data.fit_cube(cube, others)
    return artifacts.fit_key(sub.fingerprint, config, priors, sub.spec)


def start_coldstart(cube, new_ids, known_days: int, horizon: int, config: FitConfig, priors: Priors) -> None:
    reuse, others = hierarchy_plan(cube, new_ids)
    h_key = hierarchy_key(cube, reuse, others, config, priors)
    key = coldstart_key(cube, new_ids, known_days, horizon, h_key, config)
    sub = None if reuse is not None else data.fit_cube(cube, others)
    store = fitting.fit_store()
    new = sorted(int(i) for i in new_ids)
    label_source = state.current_source().label

    def work(task: TaskJob):
        if reuse is not None:
            global_fit = reuse.result
        else:
            report = _stages(
                task, f"Fitting the hierarchy on {len(others)} other stores", config.steps, "Fitting the new stores"
            )
            outcome = artifacts.fit_or_load(
                store,
                sub,
                config,
                priors,
                on_progress=report,
                should_stop=task.should_stop,
                label=f"{label_source}: {len(others)} stores",
            )
            global_fit = outcome.result
            if global_fit.meta.get("cancelled"):
                raise EvaluationCancelled("cancelled while fitting the hierarchy; nothing was scored")
        report = _stages(
            task,
            f"Fitting the {len(new)} new stores' own parameters (hierarchy frozen)",
            config.steps,
            "Forecasting and running the baselines",
        )
        return coldstart(
            global_fit,
            cube,
            new,
            int(known_days),
            int(horizon),
            seed=config.seed,
            config=config,
            n_samples=N_SAMPLES,
            on_progress=report,
            should_stop=task.should_stop,
        )

    total = config.steps
    _start("coldstart", work, key, f"{len(new)} new stores, K = {known_days} days", total)
