"""Six dashboard sessions at once on one shared fit store, each with its own data: they load
data, fit twice and delete a fit at the same time, while a reader keeps loading every fit. Each
session ends with its own state, sees only its own fits, deletes only its own, and no reader ever
meets a half-written or corrupt artifact."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from app_helpers import FIT_PAGE, button, current, fit, open_page, serialised_parsing, small_demo, texts

from bhm_core.artifacts import FitStore, folders, made_on
from bhm_core.data.sources import DemoSource, load_dataset
from ui.session import state

SESSIONS = 6
BUDGET_SECONDS = 900  # the whole run, on a shared 2-core machine
# AppTest swaps process-wide objects (Streamlit's runtime, the pages flag) for each script run, so
# two script runs at once would see each other's; a real server keeps them per session. Script
# runs take turns; the fits, their saves and the deletes they start run at the same time.
RUN_LOCK = threading.Lock()


class Turns:
    """An AppTest whose script runs take turns with the other sessions'."""

    def __init__(self, at):
        self.at = at

    def __getattr__(self, name):
        return getattr(self.at, name)

    def run(self, **kwargs):
        with RUN_LOCK:
            self.at.run(**kwargs)
        return self

    def switch_page(self, page):
        self.at.switch_page(page)
        return self


def history(at) -> list[str]:
    return sorted(at.dataframe[0].value["Key"]) if at.dataframe else []


def select(at, key):
    rows = at.dataframe[0].value
    at.session_state[at.dataframe[0].key] = {
        "selection": {"rows": [int(np.flatnonzero(rows["Key"] == key)[0])], "columns": [], "cells": []}
    }
    return at.run()


def session(i: int, results: dict, start: threading.Barrier) -> None:
    with RUN_LOCK:
        at = Turns(open_page("pages/data.py"))
    at.number_input(key="w.demo_seed").set_value(100 + i)
    start.wait()  # all sessions load, fit and delete together from here
    button(at, "Use demo data").click()
    at.run().switch_page(FIT_PAGE).run()
    fit(at, steps=20 + i)
    first = current(at).key
    fit(at, steps=40 + i)
    second = current(at).key
    seen = history(at)
    select(at, first)
    button(at, "Delete…").click()
    at.run()
    button(at, "Delete for good").click()
    at.run()
    results[i] = {
        "first": first,
        "second": second,
        "seen_before_delete": seen,
        "seen_after_delete": history(at),
        "current": current(at),
        "source": at.session_state[state.SOURCE],
        "errors": texts(at.error),
        "exception": bool(at.exception),
    }


def keep_reading(root, stop: threading.Event, problems: list, loads: list) -> None:
    """Load every listed fit over and over: a fit may vanish (deleted), never read half-written."""
    while not stop.is_set():
        store = FitStore(root)
        for key in list(store.keys()):
            found, reason = store.get(key)
            if found is not None:
                loads.append(key)
            elif reason is not None:
                problems.append(reason)
        time.sleep(0.05)


@pytest.mark.slow
def test_six_sessions_fit_and_delete_at_once_without_seeing_each_other(monkeypatch, tmp_path):
    root = small_demo(monkeypatch, tmp_path)
    serialised_parsing(monkeypatch)
    monkeypatch.setenv("BHM_DATA_ROOT", str(tmp_path / "data"))
    results, failures, problems, loads = {}, [], [], []
    start, stop = threading.Barrier(SESSIONS), threading.Event()

    def guarded(i):
        try:
            session(i, results, start)
        except BaseException as exc:  # a session's failure fails the test, with its message
            failures.append(f"session {i}: {type(exc).__name__}: {exc}")
            start.abort()

    began = time.monotonic()
    reader = threading.Thread(target=keep_reading, args=(root, stop, problems, loads), daemon=True)
    reader.start()
    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, BUDGET_SECONDS - (time.monotonic() - began)))
    stop.set()
    reader.join(timeout=30)
    elapsed = time.monotonic() - began
    assert not [t for t in threads if t.is_alive()], f"sessions still running after {elapsed:.0f} s"
    assert failures == []
    print(f"{SESSIONS} sessions in {elapsed:.1f} s; the reader loaded fits {len(loads)} times")

    store = FitStore(root)
    assert problems == [] and loads
    assert sorted(store.keys()) == sorted(r["second"] for r in results.values())
    for i, r in results.items():
        assert not r["exception"] and r["errors"] == "", (i, r["errors"])
        assert r["source"] == DemoSource(n_stores=30, n_days=200, seed=100 + i)
        assert r["seen_before_delete"] == sorted([r["first"], r["second"]])  # its own, no one else's
        assert r["seen_after_delete"] == [r["second"]]
        assert r["current"].key == r["second"] and r["current"].saved
        cube = load_dataset(r["source"]).cube()
        fitted = store.load(r["second"])  # whole and sealed
        assert len(fitted.losses) == 40 + i and made_on(store, r["second"], cube)
        assert store.get(r["first"]) == (None, None)
    assert not [p for p in root.iterdir() if p.name.startswith(folders.TEMP_PREFIXES)]
    assert len(list(root.glob(".v-*"))) == SESSIONS  # no orphaned versions either
