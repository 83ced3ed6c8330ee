"""Shared helpers of the engine pages' AppTests: a small demo, a private fit folder, a quick fit.

A fit runs in a background thread (ui.session.jobs.FitJob); a test waits for it and reruns the script,
as the page's polling fragment would.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from ui.session import loaders, state

APP = Path(__file__).resolve().parents[1] / "app.py"
FIT_PAGE = "pages/fit.py"
STEPS = 40


def serialised_parsing(monkeypatch) -> None:
    """Sessions in threads of one process: CPython 3.11's ast.parse, which Streamlit runs on each
    page script it has not compiled yet, is not thread-safe ("AST constructor recursion depth
    mismatch", CPython gh-106905), so the first parses are made one at a time."""
    import ast

    parse, lock = ast.parse, threading.Lock()

    def locked(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", locked)


def small_demo(monkeypatch, tmp_path) -> Path:
    """30 stores x 200 days of demo data; fits saved under tmp_path (never in data/fits)."""
    monkeypatch.setenv(state.DEMO_STORES_ENV, "30")
    monkeypatch.setenv(state.DEMO_DAYS_ENV, "200")
    monkeypatch.setenv("BHM_FIT_DIR", str(tmp_path / "fits"))
    loaders.evaluations.clear()  # backtests and cold starts of earlier tests (one cache per process)
    return tmp_path / "fits"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    return at.switch_page(page).run()


def button(at, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def fit_button(at):
    return button(at, "Fit ")


def wait_for_job(at, timeout: float = 120) -> AppTest:
    job = at.session_state.get(state.FIT_JOB, None)
    if job is not None:
        assert job.wait(timeout), "the background fit did not finish"
    return at.run()


def fit(at, steps: int = STEPS, **settings) -> AppTest:
    """Set the steps (and other SVI widgets by field name), press Fit, wait, rerun."""
    at.number_input(key=f"{state.W_SVI}.steps").set_value(steps)
    for name, value in settings.items():
        at.number_input(key=f"{state.W_SVI}.{name}").set_value(value)
    at.run()
    fit_button(at).click()
    at.run()
    return wait_for_job(at)


def current(at):
    return at.session_state.get(state.FIT, None)


def chart(at, key: str) -> dict:
    """The Plotly figure (as JSON) drawn with this widget key."""
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert found, f"no chart {key!r}; charts: {[c.proto.id[-30:] for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)


def values(trace: dict, name: str) -> np.ndarray:
    """A trace's array: Plotly writes numpy arrays as base64 typed arrays ({dtype, bdata})."""
    raw = trace[name]
    if isinstance(raw, dict) and "bdata" in raw:
        array = np.frombuffer(base64.b64decode(raw["bdata"]), dtype=raw["dtype"])
        return array.reshape(raw["shape"]) if "shape" in raw and isinstance(raw["shape"], list) else array
    return np.asarray(raw)


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def fitted_app(monkeypatch, tmp_path, page: str) -> AppTest:
    """A session with a current fit (first 20 demo stores, STEPS steps), then on `page`."""
    small_demo(monkeypatch, tmp_path)
    at = open_page(FIT_PAGE)
    fit(at)
    assert current(at) is not None, texts(at.error)
    return at.switch_page(page).run()


def evaluation_app(monkeypatch, tmp_path, page: str) -> AppTest:
    """A session without a fit, STEPS steps set on Model & fit (an evaluation page's runs use the
    settings there), then on `page`."""
    small_demo(monkeypatch, tmp_path)
    at = open_page(FIT_PAGE)
    at.number_input(key=f"{state.W_SVI}.steps").set_value(STEPS)
    at.run()
    return at.switch_page(page).run()


def wait_for_eval(at, kind: str, timeout: float = 300) -> AppTest:
    """Wait for the page's background backtest / cold-start job (ui.session.evaluations), then rerun."""
    key = f"{state.EVAL_JOB}.{kind}"
    job = at.session_state.get(key, None)
    if job is not None:
        assert job.wait(timeout), f"the background {kind} did not finish"
    return at.run()
