"""Bayesian hierarchical sales forecasting: data, cube, model, fit, prediction and evaluation.

Pure library: never imports streamlit. The dashboard (app.py, pages/, ui/) sits on top of it.
"""

__version__ = "0.2.0"
