"""The History page through AppTest: the fits folder's current fit, lineage, forecast movement
between two fits, and the drift monitor."""

from __future__ import annotations

import pytest
from app_helpers import FIT_PAGE, button, chart, current, fit, fitted_app, open_page, small_demo, texts

from bhm_core.artifacts import FitStore

PAGE = "pages/history.py"


@pytest.fixture
def app(monkeypatch, tmp_path):
    return fitted_app(monkeypatch, tmp_path, PAGE)


def test_without_a_fit_the_page_says_so(monkeypatch, tmp_path):
    small_demo(monkeypatch, tmp_path)
    at = open_page(PAGE)
    assert not at.exception and "No current fit yet" in at.info[0].value


def test_the_first_fit_is_the_folders_current_and_its_lineage_is_one_fit(app, tmp_path):
    assert not app.exception and not app.error
    key = current(app).key
    store = FitStore(tmp_path / "fits")
    assert store.current_key() in (None, key)
    timeline = chart(app, "hist.lineage")
    assert list(timeline["data"][0]["text"]) == [key[:8]]
    assert "No other saved fit to compare with" in texts(app.caption)


def test_a_second_fit_is_compared_and_can_be_made_current(app, tmp_path):
    first = current(app).key
    store = FitStore(tmp_path / "fits")
    store.set_current(first)
    app.switch_page(FIT_PAGE).run()
    fit(app, steps=25)
    second = current(app).key
    assert second != first
    app.switch_page(PAGE).run()
    assert not app.exception and not app.error
    assert f"`{first[:12]}`" in texts(app.info)  # the folder's current fit is the first one
    assert app.selectbox(key="w.hist.other").value == first
    store_chart, total_chart = chart(app, "hist.store_chart"), chart(app, "hist.total_chart")
    names = {t["name"] for t in total_chart["data"]}
    assert {f"{first[:12]}: mean", f"{second[:12]}: mean"} <= names and len(store_chart["data"]) == 4
    assert "forecasts" in texts(app.caption) and "%" in texts(app.caption)
    button(app, "Make the fit in use current").click()
    app.run()
    assert store.current_key() == second
    assert "is the fits folder's current fit" in texts(app.success)


def test_the_monitor_checks_the_recent_days_on_request(app):
    app.number_input(key="w.hist.recent").set_value(28)
    app.toggle(key="w.hist.drift").set_value(True)
    app.run()
    assert not app.exception and not app.error
    markdown = texts(app.markdown)
    assert "Stores that left the model:" in markdown and "Effects that moved:" in markdown
    assert "promo on" in markdown and "the year before" in markdown
