"""What a page needs before it can draw anything: a current fit, or valid model settings. Each
guard says what is missing, links to the page that fixes it, and stops (or returns None)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from bhm_core.errors import BhmError
from bhm_core.model.config import FitConfig, Priors
from ui.session import fits, loaders, warmup
from ui.views import prior_editor, svi_settings


def require_fit(why: str):
    """(current fit, the cube it was fitted on) for pages that show a fit; else say why and stop."""
    cube = loaders.current_cube()
    if cube is None:
        st.stop()
    fit = fits.current()
    if fit is None:
        running = fits.job()
        if running is not None and not running.done:
            from ui.views import fit_runner

            st.info(
                f"A fit is running ({fit_runner.running_text(running)}): {why} This page shows it once it is done.",
                icon=":material/hourglass_top:",
            )
            fit_runner.progress()
        else:
            st.info(f"No current fit yet: {why} Fit the model first.", icon=":material/info:")
        st.page_link("pages/fit.py", label="Go to Model & fit", icon=":material/tune:")
        st.stop()
    warmup.compilation_cache()  # forecasts and effects compile too
    return fit, loaders.fit_cube(cube, np.asarray(fit.result.store_ids))


def model_settings() -> tuple[FitConfig | None, Priors | None]:
    """Priors and SVI settings of the Model & fit page, or (None, None) after saying what is wrong."""
    try:
        return svi_settings.current_config(), prior_editor.current_priors()
    except BhmError as exc:
        st.error(f"The settings on the Model & fit page are not valid: {exc}")
        st.page_link("pages/fit.py", label="Fix them on Model & fit", icon=":material/tune:")
        return None, None
