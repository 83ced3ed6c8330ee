"""The numerical stack (JAX, NumPyro) is imported only where a fit, a forecast or an effect needs
it, and ahead of that by `warm_up` in a background thread once the first page is drawn: the Data
page of a fresh server never waits for it. Then `fit_programs` compiles, in the background too,
the programs that fits of a few to a few dozen stores of the data in use run (five of them, see
bhm_core.inference.packing.cell_bucket), so that picking other stores never waits for a compile.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time

import streamlit as st

from ui.session import state

log = logging.getLogger(__name__)
WARM_PROGRAMS_ENV = "BHM_WARM_PROGRAMS"  # "0": compile nothing ahead (tests count compilations)

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


def warm_up() -> None:
    """After each page (app.py): the numerical stack loads in the background once per process, then
    the fit programs of the data in use compile there too."""
    _imports()
    from ui.session import loaders

    cube = loaders.loaded_cube()
    if cube is not None:
        fit_programs(cube.fingerprint, state.PROGRESS_EVERY, cube)


@st.cache_resource(show_spinner=False)
def _imports() -> threading.Thread:
    """Import the numerical stack and turn on JAX's persistent compilation cache in a background
    thread, once per process."""
    thread = threading.Thread(target=_import_heavy, args=(WARM_UP_DELAY,), daemon=True, name="bhm-warm-up")
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def compilation_cache() -> str:
    """Turn on JAX's persistent compilation cache, once per process (before anything compiles)."""
    from bhm_core.inference.programs import enable_compilation_cache

    return str(enable_compilation_cache())


@st.cache_resource(max_entries=4, show_spinner=False)
def fit_programs(fingerprint: str, chunk_steps: int, _cube) -> threading.Thread | None:
    """Compile the common fit programs of these data in a background thread, once per process and
    data (the persistent cache then keeps them for the next process). None when switched off."""
    if os.environ.get(WARM_PROGRAMS_ENV, "1") == "0":
        return None
    imports = _imports()
    thread = threading.Thread(
        target=_compile_programs, args=(imports, _cube, chunk_steps), daemon=True, name="bhm-fit-programs"
    )
    thread.start()
    return thread


def _compile_programs(imports: threading.Thread, cube, chunk_steps: int) -> None:
    imports.join()
    from bhm_core.inference.fit import warm_programs
    from bhm_core.model.config import FitConfig

    try:
        warm_programs(cube, FitConfig(chunk_steps=chunk_steps))
    except Exception:  # a failed warm-up only means the first fit of a size compiles
        log.exception("compiling the fit programs ahead failed")
