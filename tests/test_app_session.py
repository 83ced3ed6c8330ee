"""What a session keeps: the view in the URL (a reload or a link restores the source, the picks and
the fit), the picks and fit of a source the user leaves and comes back to, and words that follow
what is going on (a running fit, a fit of data that changed since)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from app_helpers import APP, FIT_PAGE, button, current, fit, small_demo, texts
from streamlit.testing.v1 import AppTest

from bhm_core import artifacts
from bhm_core.artifacts import FitStore
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.model.config import FitConfig, Priors
from ui.session import state, urls


@pytest.fixture
def fits_dir(monkeypatch, tmp_path):
    folder = small_demo(monkeypatch, tmp_path)
    monkeypatch.setenv("BHM_DATA_ROOT", str(tmp_path / "root"))
    return folder


def saved_fit(folder, stores=(1, 2, 3)):
    cube = load_dataset(DemoSource(n_stores=30, n_days=200)).cube().select_stores(list(stores))
    return artifacts.fit_or_load(FitStore(folder), cube, FitConfig(steps=20, chunk_steps=20), Priors())


def test_ids_and_tokens_round_trip():
    assert urls.format_ids([9, 1, 2, 3, 7, 10]) == "1-3,7,9-10"
    assert urls.parse_ids("1-3,7,9-10") == [1, 2, 3, 7, 9, 10]
    assert urls.parse_ids("5,x,3-1,2-") == [5]  # a hand-edited link never crashes
    demo = DemoSource(n_stores=30, n_days=200, seed=4)
    assert urls.from_token(urls.token(demo)) == demo
    assert urls.from_token("kaggle-dir-000000000000") is None  # unknown: never a path from a link


def test_a_link_restores_the_source_the_picks_and_the_fit(fits_dir):
    made = saved_fit(fits_dir)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(source="demo-30-200-0", stores="1-3", fit=made.key)
    at.run()
    assert not at.exception
    assert at.session_state[state.SOURCE] == DemoSource(n_stores=30, n_days=200, seed=0)
    assert at.session_state[state.SELECTED_STORES] == [1, 2, 3]
    assert current(at).key == made.key
    assert at.session_state[f"{state.W_SVI}.steps"] == 20  # the fit's settings are in the editors
    assert "Fit in use:** 3 stores" in texts(at.sidebar.caption)
    at.switch_page("pages/forecast.py").run()
    assert not at.exception and "Current fit: 3 stores" in texts(at.caption)


def test_the_url_follows_the_session(fits_dir):
    made = saved_fit(fits_dir, (4, 5))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[state.SELECTED_STORES] = [4, 5]
    at.run()
    assert at.query_params["source"] == ["demo-30-200-0"] or at.query_params["source"] == "demo-30-200-0"
    assert "4-5" in str(at.query_params["stores"])
    assert "fit" not in at.query_params
    at2 = AppTest.from_file(str(APP), default_timeout=60)
    at2.query_params.update(fit=made.key)
    at2.run()
    assert made.key in str(at2.query_params["fit"])


def test_a_link_to_unknown_data_falls_back_to_the_demo(fits_dir):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(source="csv-0123456789ab", stores="1,2")
    at.run()
    assert not at.exception
    assert at.session_state[state.SOURCE] == state.default_demo_source()
    assert any("does not know" in t.value for t in at.toast)


def test_switching_data_and_back_brings_back_its_picks_and_fit(fits_dir):
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.session_state[state.SELECTED_STORES] = [2, 3]
    at.session_state[state.W_STORE_PICKER] = [2, 3]
    at.switch_page(FIT_PAGE).run()
    fit(at, steps=20)
    first = current(at)
    assert first is not None and list(first.result.store_ids) == [2, 3]
    at.switch_page("pages/data.py").run()
    at.number_input(key="w.demo_seed").set_value(5)
    button(at, "Use demo data").click()
    at.run()
    assert current(at) is None and at.session_state[state.SELECTED_STORES] == []
    at.number_input(key="w.demo_seed").set_value(0)
    button(at, "Use demo data").click()
    at.run()
    assert at.session_state[state.SELECTED_STORES] == [2, 3]
    assert current(at).key == first.key


def test_while_the_first_fit_runs_the_pages_say_so(fits_dir, monkeypatch):
    import threading

    from ui.session import jobs

    gate = threading.Event()
    real = jobs.FitJob._work

    def slow(self):
        gate.wait(30)
        return real(self)

    monkeypatch.setattr(jobs.FitJob, "_work", slow)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(FIT_PAGE).run()
    at.number_input(key=f"{state.W_SVI}.steps").set_value(20)
    at.run()
    button(at, "Fit ").click()
    at.run()
    assert "The first fit is running (preparing, 20 stores)" in texts(at.info)
    assert "No current fit yet" not in texts(at.info)
    at.switch_page("pages/forecast.py").run()
    assert "A fit is running" in texts(at.info) and "No current fit yet" not in texts(at.info)
    gate.set()
    at.session_state[state.FIT_JOB].wait(60)


def test_a_fit_of_data_that_changed_is_no_longer_in_use(fits_dir):
    made = saved_fit(fits_dir)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(fit=made.key)
    at.run()
    assert current(at) is not None
    fit_now = at.session_state[state.FIT]
    stale = replace(fit_now, result=replace(fit_now.result, data_fingerprint="0" * 32))
    at.session_state[state.FIT] = stale
    at.switch_page(FIT_PAGE).run()
    assert current(at) is None
    assert "The data changed since the last fit" in texts(at.info)
