"""Bayesian hierarchical sales forecasting: data, cube, model, fit, prediction and evaluation.

Pure library: never imports streamlit. The dashboard (app.py, pages/, ui/) sits on top of it.
"""

from bhm_core.threads import single_threaded_blas

single_threaded_blas()  # before NumPy's first BLAS call (see threads.py)

__version__ = "0.2.0"
