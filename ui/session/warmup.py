"""The numerical stack (JAX, NumPyro) is imported only where a fit, a forecast or an effect needs
it, and ahead of that by `warm_up` in a background thread once the first page is drawn: the Data
page of a fresh server never waits for it."""

from __future__ import annotations

import importlib
import threading
import time

import streamlit as st

HEAVY_MODULES = (
    "bhm_core.inference.fit",
    "bhm_core.forecast.predict",
    "bhm_core.artifacts",
    "bhm_core.forecast.effects",
    "bhm_core.forecast.prior_check",
    "bhm_core.evaluation.backtest",
)
WARM_UP_DELAY = 2.0  # seconds: let the first page's messages reach the browser before importing


def _import_heavy(delay: float) -> None:
    time.sleep(delay)  # imports hold the GIL: started at once, they slow the server's sending
    for name in HEAVY_MODULES:  # in dependency order: the engine first
        importlib.import_module(name)
    from bhm_core.inference.programs import enable_compilation_cache

    enable_compilation_cache()


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Import the numerical stack and turn on JAX's persistent compilation cache in a background
    thread, once per process (app.py calls it after the page has run)."""
    thread = threading.Thread(target=_import_heavy, args=(WARM_UP_DELAY,), daemon=True, name="bhm-warm-up")
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def compilation_cache() -> str:
    """Turn on JAX's persistent compilation cache, once per process (before anything compiles)."""
    from bhm_core.inference.programs import enable_compilation_cache

    return str(enable_compilation_cache())
