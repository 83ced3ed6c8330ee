"""SVI settings as widgets -> FitConfig. An invalid value is named by its widget's label, with the
value and the allowed range, under the row that holds the widget, and gives None."""

from __future__ import annotations

import streamlit as st

from bhm_core.errors import ConfigError
from bhm_core.model import likelihoods
from bhm_core.model.config import INITS, OPTIMIZERS, SCHEDULES, FitConfig
from ui.session import state
from ui.views import labels

PROGRESS_EVERY = state.PROGRESS_EVERY
OPTIMIZER_LABELS = {"adam": "Adam", "clipped_adam": "Adam, clipped gradients"}
INIT_LABELS = {"least_squares": "Least squares (fast)", "prior": "Prior means"}
LIKELIHOOD_LABELS = {"negative_binomial": "Gamma-Poisson", "log_student_t": "Student-t on log sales"}


def _key(name: str) -> str:
    return f"{state.W_SVI}.{name}"


NO_WIDGET = ("warmup_steps",)  # kept as loaded (a settings file, a reopened fit)


def load(config: FitConfig) -> None:
    """Put a fit's settings into the widgets (call before they are drawn, e.g. from a callback)."""
    for name, value in _widget_values(config).items():
        st.session_state[_key(name)] = value
    st.session_state[state.SVI_EXTRA] = {name: getattr(config, name) for name in NO_WIDGET}


def _widget_values(config: FitConfig) -> dict:
    values = config.to_dict()
    values.pop("chunk_steps")  # the dashboard's own: how often the progress panel moves
    for name in NO_WIDGET:  # the default ramp suits every case; a file may set it
        values.pop(name)
    values["minibatch"] = config.batch_size is not None
    values["batch_size"] = config.batch_size or 10
    return values


def _build(values: dict) -> FitConfig:
    """FitConfig from widget values (raises ConfigError)."""
    return FitConfig(
        steps=int(values["steps"]),
        learning_rate=float(values["learning_rate"]),
        optimizer=values["optimizer"],
        schedule=values["schedule"],
        final_lr_fraction=float(values["final_lr_fraction"]),
        clip_norm=float(values["clip_norm"]),
        particles=int(values["particles"]),
        batch_size=int(values["batch_size"]) if values["minibatch"] else None,
        init=values["init"],
        chunk_steps=PROGRESS_EVERY,
        seed=int(values["seed"]),
        likelihood=values["likelihood"],
        # only the fields without a widget: a session may hold more from an older version of the page
        **{k: v for k, v in st.session_state.get(state.SVI_EXTRA, {}).items() if k in NO_WIDGET},
    )


def current_config() -> FitConfig:
    """The settings as last set on the Model & fit page (defaults where never touched), for pages
    without the widgets. Raises ConfigError while they are invalid there."""
    values = _widget_values(FitConfig())
    for name in values:
        remembered = st.session_state.get(_key(name))
        if remembered is not None:
            values[name] = remembered
    return _build(values)


KEEP = {"key": None, "persist_state": "session"}  # every widget here keeps its value for the session


def settings(n_stores: int) -> FitConfig | None:
    for name, value in _widget_values(FitConfig()).items():
        state.seed_widget(_key(name), value)
    slots = {}
    values = _optimizer_row()
    slots.update(dict.fromkeys(values, st.empty()))
    more = _schedule_row(values["schedule"], values["optimizer"])
    slots.update(dict.fromkeys(more, st.empty()))
    batch = _batch_row(n_stores)
    slots.update(dict.fromkeys(batch, st.empty()))
    try:
        return _build(values | more | batch)
    except ConfigError as exc:
        field = (exc.key or "").partition(".")[2]
        slots.get(field, st).error(labels.message(exc), icon=":material/error:")
        return None


def _optimizer_row() -> dict:
    top = st.columns([1, 1, 1.6, 1.8])
    steps = top[0].number_input(
        labels.SVI["steps"],
        step=25,
        help="SVI iterations; the fit starts from a Gaussian "
        "approximation of the posterior, so about a hundred usually suffice",
        **_k("steps", KEEP),
    )
    lr = top[1].number_input(
        labels.SVI["learning_rate"],
        step=0.005,
        format="%.4f",
        help="Adam's step size at the start of the schedule",
        **_k("learning_rate", KEEP),
    )
    optimizer = top[2].segmented_control(
        labels.SVI["optimizer"], OPTIMIZERS, format_func=OPTIMIZER_LABELS.get, required=True, **_k("optimizer", KEEP)
    )
    schedule = top[3].segmented_control(
        labels.SVI["schedule"],
        SCHEDULES,
        required=True,
        format_func=str.capitalize,
        **_k("schedule", KEEP),
        help="Constant, or decaying to the final fraction by the last step",
    )
    return {"steps": steps, "learning_rate": lr, "optimizer": optimizer, "schedule": schedule}


def _schedule_row(schedule: str, optimizer: str) -> dict:
    mid = st.columns([1, 1, 1, 1, 2])
    final = mid[0].number_input(
        labels.SVI["final_lr_fraction"],
        step=0.01,
        format="%.3f",
        disabled=schedule == "constant",
        **_k("final_lr_fraction", KEEP),
        help="The schedule ends at learning rate × this",
    )
    clip = mid[1].number_input(
        labels.SVI["clip_norm"],
        step=1.0,
        disabled=optimizer != "clipped_adam",
        help="Largest gradient norm (clipped Adam only)",
        **_k("clip_norm", KEEP),
    )
    particles = mid[2].number_input(
        labels.SVI["particles"],
        step=1,
        help="Samples of the guide per step (more: smoother loss, slower steps)",
        **_k("particles", KEEP),
    )
    seed = mid[3].number_input(labels.SVI["seed"], step=1, **_k("seed", KEEP))
    init = mid[4].segmented_control(
        labels.SVI["init"], INITS, format_func=INIT_LABELS.get, required=True, **_k("init", KEEP)
    )
    return {"final_lr_fraction": final, "clip_norm": clip, "particles": particles, "seed": seed, "init": init}


def _batch_row(n_stores: int) -> dict:
    low = st.columns([1.2, 1.2, 2.4, 1.6], vertical_alignment="center")
    minibatch = low[0].toggle(
        "Minibatch stores",
        help="Each step sees a random subset of the stores, scaled up: cheaper steps on large data",
        **_k("minibatch", KEEP),
    )
    batch = low[1].number_input(
        labels.SVI["batch_size"],
        step=1,
        disabled=not minibatch,
        help=f"How many of the {n_stores} stores each step sees",
        **_k("batch_size", KEEP),
    )
    law = low[2].segmented_control(
        labels.SVI["likelihood"],
        tuple(likelihoods.LIKELIHOODS),
        format_func=lambda name: LIKELIHOOD_LABELS.get(name, name),
        required=True,
        help="The law of a store-day's sales around the model's level. Gamma-Poisson: counts whose "
        "variance grows with the mean. Student-t on log sales: relative errors with heavier tails "
        "on both sides, so odd days weigh less in the fit; its steps are about a third cheaper",
        **_k("likelihood", KEEP),
    )
    if minibatch and batch >= n_stores:
        low[3].caption(
            f"{batch:,} is not fewer than the {n_stores:,} stores fitted: every step sees every store "
            "(a full-batch fit)."
        )
    elif minibatch:
        low[3].caption(f"{batch:,} of the {n_stores:,} stores per step.")
    return {"minibatch": minibatch, "batch_size": batch, "likelihood": law}


def _k(name: str, keep: dict) -> dict:
    return {**keep, "key": _key(name)}
