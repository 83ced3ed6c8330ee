"""Backtests and cold-start trials as background jobs of the one lifecycle (ui.session.lifecycle).

Both fit, so they run like a fit (polled, cancellable). A finished job puts its Evaluation into the
process-wide cache (ui.session.loaders.evaluations) under a key naming everything that decides it
(bhm_core.evaluation.plans), so a page that comes back, or another session asking the same, shows
it at once. What runs is the library's; this module only names the stages for the page.
"""

from __future__ import annotations

import streamlit as st

from bhm_core.evaluation import plans
from bhm_core.evaluation.backtest import EvaluationCancelled, backtest
from bhm_core.model.config import FitConfig, Priors
from ui.session import fits, loaders, state, warmup
from ui.session.jobs import BackgroundJob, TaskJob
from ui.session.lifecycle import Lifecycle, Notice

N_SAMPLES = 500
WHAT = {"backtest": "Backtest", "coldstart": "New-store trial"}
SCORING = "Forecasting and running the baselines"


def _lifecycle(kind: str) -> Lifecycle:
    def succeeded(done: BackgroundJob) -> Notice:
        return Notice("success", f"{WHAT[kind]} done in {done.seconds:.1f} s ({done.label}).")

    def failed(done: BackgroundJob, error: BaseException) -> Notice | None:
        if isinstance(error, EvaluationCancelled):
            return Notice("warning", f"{WHAT[kind]} {error}.")
        return None

    return Lifecycle(kind, WHAT[kind].lower(), state.eval_job_key(kind), state.eval_notice_key(kind), succeeded, failed)


LIFECYCLES = {kind: _lifecycle(kind) for kind in state.EVAL_KINDS}


def lifecycle(kind: str) -> Lifecycle:
    return LIFECYCLES[kind]


def cached(key: str | None):
    """The evaluation for these inputs, if one has been run in this process."""
    return None if key is None else loaders.evaluations().get(key)


def _start(kind: str, work, key: str, label: str, total_steps: int) -> None:
    def make() -> TaskJob:
        warmup.compilation_cache()
        source = state.current_source()
        return TaskJob(work, loaders.evaluations(), key=key, label=label, source=source, total_steps=total_steps)

    LIFECYCLES[kind].start(make)


# ----------------------------------------------------------------------------------------------
# Backtest


def backtest_key(cube, store_ids, cutoff, horizon: int, config: FitConfig, priors: Priors) -> str:
    return plans.backtest_key(cube, store_ids, cutoff, horizon, config, priors, N_SAMPLES)


def start_backtest(cube, store_ids, cutoff, horizon: int, config: FitConfig, priors: Priors) -> None:
    key = backtest_key(cube, store_ids, cutoff, horizon, config, priors)
    ids = [int(i) for i in store_ids]

    def work(task: TaskJob):
        task.begin(f"Fitting {len(ids)} stores on the days up to {cutoff}", config.steps, then=SCORING)
        return backtest(
            cube,
            str(cutoff),
            int(horizon),
            stores=ids,
            seed=config.seed,
            config=config,
            priors=priors,
            n_samples=N_SAMPLES,
            on_progress=task.progress,
            should_stop=task.should_stop,
        )

    _start("backtest", work, key, f"{len(ids)} stores, cutoff {cutoff}, {horizon} days", config.steps)


# ----------------------------------------------------------------------------------------------
# Cold start


def hierarchy_plan(cube, new_ids) -> tuple[fits.CurrentFit | None, list[int]]:
    """(current fit to reuse, or None; the stores the hierarchy is fitted on): see
    bhm_core.evaluation.plans.hierarchy_plan, with this session's fit and picks, or the first
    `wider_hierarchy()` stores other than the new ones once the user asked for a wider one."""
    wider = wider_hierarchy()
    if wider:
        new = {int(i) for i in new_ids}
        return None, [int(i) for i in cube.store_ids if int(i) not in new][:wider]
    fit = fits.current()
    picked, _ = fits.stores_to_fit(cube)
    plan = plans.hierarchy_plan(
        cube, new_ids, fit.result if fit else None, picked, state.DEFAULT_STORES, select=loaders.fit_cube
    )
    return (fit if plan.reuse is not None else None), plan.stores


def wider_hierarchy() -> int | None:
    """The number of stores the user asked the New stores page's hierarchy to rest on, if any."""
    return st.session_state.get(state.NS_HIERARCHY_STORES)


def set_wider_hierarchy(n_stores: int | None) -> None:
    st.session_state[state.NS_HIERARCHY_STORES] = n_stores


def pooling_report(cube, hierarchy_ids, new_ids):
    return plans.pooling_report(cube, hierarchy_ids, new_ids, select=loaders.fit_cube)


def hierarchy_key(cube, reuse, others, config: FitConfig, priors: Priors) -> str:
    return plans.hierarchy_key(
        cube, others, config, priors, reuse_key=None if reuse is None else reuse.key, select=loaders.fit_cube
    )


def coldstart_key(cube, new_ids, known_days: int, horizon: int, h_key: str, config: FitConfig) -> str:
    return plans.coldstart_key(cube, new_ids, known_days, horizon, h_key, config, N_SAMPLES)


def start_coldstart(cube, new_ids, known_days: int, horizon: int, config: FitConfig, priors: Priors) -> None:
    reuse, others = hierarchy_plan(cube, new_ids)
    key = coldstart_key(cube, new_ids, known_days, horizon, hierarchy_key(cube, reuse, others, config, priors), config)
    plan = plans.HierarchyPlan(None if reuse is None else reuse.result, others)
    store = fits.fit_store()
    new = sorted(int(i) for i in new_ids)
    label = f"{state.current_source().label}: {len(others)} stores"
    phases = {
        plans.HIERARCHY_STAGE: (f"Fitting the hierarchy on {len(others)} other stores", "Fitting the new stores"),
        plans.NEW_STORES_STAGE: (f"Fitting the {len(new)} new stores' own parameters (hierarchy frozen)", SCORING),
    }

    def work(task: TaskJob):
        # No select=loaders.fit_cube here: Streamlit's caches belong to the script's thread, so the
        # job takes its own sub-cube of the hierarchy's stores.
        return plans.coldstart_with_hierarchy(
            cube,
            new,
            int(known_days),
            int(horizon),
            plan=plan,
            config=config,
            priors=priors,
            fit_store=store,
            n_samples=N_SAMPLES,
            label=label,
            on_stage=lambda stage, steps: task.begin(phases[stage][0], steps, then=phases[stage][1]),
            on_progress=task.progress,
            should_stop=task.should_stop,
        )

    _start("coldstart", work, key, f"{len(new)} new stores, K = {known_days} days", config.steps)
