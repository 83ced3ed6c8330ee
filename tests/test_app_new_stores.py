"""The New stores page through AppTest: picking stores to treat as new, a small cold-start run
(hierarchy fitted on the others, or the current fit reused), its charts, and impossible inputs."""

from __future__ import annotations

import pytest
from app_helpers import (
    FIT_PAGE,
    button,
    chart,
    current,
    evaluation_app,
    fit,
    open_page,
    small_demo,
    texts,
    wait_for_eval,
)

from bhm_core.artifacts import FitStore
from bhm_core.data.sources import load_dataset
from bhm_core.errors import ConfigError
from bhm_core.evaluation.coldstart import coldstart
from ui.charts import style
from ui.session import state

PAGE = "pages/new_stores.py"


def new_picker(at):
    return next(m for m in at.multiselect if m.key.startswith("w.ns.stores"))


@pytest.fixture
def app(monkeypatch, tmp_path):
    return evaluation_app(monkeypatch, tmp_path, PAGE)


def run_trial(at):
    button(at, "Fit and forecast").click()
    at.run()
    return wait_for_eval(at, "coldstart")


def test_renders_with_the_last_stores_as_new(app):
    assert not app.exception and not app.error
    assert new_picker(app).value == [28, 29, 30]  # not among the 20 stores a default fit uses
    assert app.number_input(key="w.ns.known").value == 7
    assert not button(app, "Fit and forecast").disabled
    assert "a fit on 20 other stores" in texts(app.caption)


def test_cold_start_fits_the_others_then_scores_model_and_baselines(app, tmp_path):
    at = run_trial(app)
    assert not at.exception and not at.error, texts(at.error)
    assert "New-store trial done" in texts(at.success)
    table = at.dataframe[0].value
    assert table["Method"].tolist()[0] == "Hierarchical model"
    assert "Mean of the known days" in set(table["Method"])
    saved = FitStore(tmp_path / "fits")
    assert len(saved.list()) == 1  # the hierarchy fit is saved for reuse
    hierarchy = saved.load(saved.list()["key"][0])
    assert hierarchy.store_ids.tolist() == list(range(1, 21))
    assert saved.store_ids(saved.list()["key"][0]).tolist() == list(range(1, 21))
    with pytest.raises(ConfigError, match="are in the fit of the hierarchy"):  # before any fitting
        coldstart(hierarchy, load_dataset(state.default_demo_source()).cube(), [1, 28], 7, 14)
    figure = chart(at, "ns.stores")
    titles = [a["text"] for a in figure["layout"]["annotations"] if a["text"].startswith("Store ")]
    assert titles == ["Store 28", "Store 29", "Store 30"]
    by_name = {t.get("name"): t for t in figure["data"] if t.get("showlegend", True)}
    assert by_name["Hierarchical model"]["line"]["color"] == style.SERIES_COLOUR
    known = [t for t in figure["data"] if t.get("name", "").startswith("Known days")]
    assert sum(len(t["x"]) for t in known) == 3 * 7  # each store's K known days
    assert chart(at, "ns.calibration") and chart(at, "ns.lift")


def test_a_current_fit_without_the_new_stores_is_reused(monkeypatch, tmp_path):
    small_demo(monkeypatch, tmp_path)
    at = open_page(FIT_PAGE)
    fit(at)
    assert current(at) is not None
    at.switch_page(PAGE).run()
    assert "the current fit" in texts(at.caption) and "reused" in texts(at.caption)
    at = run_trial(at)
    assert not at.exception and not at.error, texts(at.error)
    assert len(FitStore(tmp_path / "fits").list()) == 1  # no second fit of the hierarchy
    new_picker(at).set_value([3, 29])  # store 3 is in the current fit: fit the others instead
    at.run()
    assert "a fit on 19 other stores" in texts(at.caption)


def test_too_many_known_days_shows_an_error_and_no_exception(app):
    app.number_input(key="w.ns.known").set_value(1000)
    app.run()
    assert not app.exception
    assert "known days K = 1000" in texts(app.error)
    assert button(app, "Fit and forecast").disabled
    app.number_input(key="w.ns.known").set_value(150)  # fits, but leaves no room for the horizon
    app.run()
    assert "fewer than horizon" in texts(app.error)
    new_picker(app).set_value([])
    app.run()
    assert "Choose at least one store" in texts(app.info) and not app.exception


def test_a_hierarchy_of_few_stores_is_flagged_and_can_be_widened(app):
    app.session_state[state.SELECTED_STORES] = [1, 2, 3, 4]
    app.run()
    assert "The hierarchy rests on 4 stores" in texts(app.warning)
    button(app, "Fit the hierarchy on 27 stores instead").click()
    app.run()
    assert "a fit on 27 other stores" in texts(app.caption)
    assert "rests on" not in texts(app.warning)
    at = run_trial(app)
    assert not at.exception and not at.error, texts(at.error)
    assert "New-store trial done" in texts(at.success)
    button(at, "Back to the picked stores").click()
    at.run()
    assert "The hierarchy rests on 4 stores" in texts(at.warning)
