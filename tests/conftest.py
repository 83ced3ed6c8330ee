"""Shared test set-up: markers by kind of test, so that `make test-fast` runs the core maths and data
tests alone (pytest -m "not slow and not app and not browser and not server")."""

from __future__ import annotations

import os

import pytest

# Tests count compilations and share two cores: the dashboard compiles no fit programs ahead here.
os.environ.setdefault("BHM_WARM_PROGRAMS", "0")

# Modules whose tests fit, backtest or start subprocesses: seconds each.
SLOW_MODULES = {"test_coldstart.py", "test_engine.py", "test_evaluation.py", "test_minibatch.py", "test_scale.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        if name.startswith("test_app_"):
            item.add_marker(pytest.mark.app)
        elif name == "test_browser.py":
            item.add_marker(pytest.mark.browser)
        elif name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
