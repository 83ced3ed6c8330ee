"""The Stores page through AppTest: filters, picking, random samples, picks kept across pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.session import state
from ui.views.store_picker import parse_id_query

APP = Path(__file__).resolve().parents[1] / "app.py"
STORES_PAGE = "pages/stores.py"


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv(state.DEMO_STORES_ENV, "30")
    monkeypatch.setenv(state.DEMO_DAYS_ENV, "200")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    return at.switch_page(STORES_PAGE).run()


def button(at, label_start):
    return next(b for b in at.button if b.label.startswith(label_start))


def by_label(widgets, label):
    return next(w for w in widgets if w.label == label)


def table(at):
    return at.dataframe[0].value


def picker(at):
    return at.multiselect(key=state.W_STORE_PICKER)


def test_renders_all_stores_and_asks_for_picks(app):
    assert not app.exception
    assert len(table(app)) == 30
    assert "Pick stores" in app.info[0].value
    assert not app.get("plotly_chart")


def test_random_sample_is_reproducible_and_drawn(app):
    button(app, "Random sample of 6").click()
    app.run()
    first = picker(app).value
    assert len(first) == 6 and first == sorted(first)
    assert app.session_state[state.SELECTED_STORES] == first
    assert app.get("plotly_chart"), "small multiples missing"
    button(app, "Clear picks").click()
    app.run()
    assert picker(app).value == []
    button(app, "Random sample of 6").click()
    app.run()
    assert picker(app).value == first  # same seed, same sample
    app.number_input(key="w.sample_seed").set_value(7)
    button(app, "Random sample of 6").click()
    app.run()
    assert picker(app).value != first


def test_filters_narrow_the_table(app):
    full = table(app)
    kind = sorted(full["StoreType"].unique())[0]
    by_label(app.multiselect, "Store type").set_value([kind])
    app.run()
    assert set(table(app)["StoreType"]) == {kind}
    assert len(table(app)) == (full["StoreType"] == kind).sum()
    by_label(app.multiselect, "Store type").set_value([])
    by_label(app.text_input, "Store ids").set_value("1-5, 9")
    app.run()
    assert table(app)["Store"].tolist() == [1, 2, 3, 4, 5, 9]
    by_label(app.text_input, "Store ids").set_value("")
    app.segmented_control[0].set_value("Yes")
    app.run()
    assert table(app)["Promo2"].all()


def test_sales_level_slider_keeps_stores_in_range(app):
    slider = app.slider[0]
    lo, hi = slider.min, slider.max
    mid = (lo + hi) // 2 // slider.step * slider.step
    slider.set_value((lo, mid))
    app.run()
    means = table(app)["MeanSales"]
    assert 0 < len(means) < 30 and (means <= mid).all()


def test_sample_respects_the_filters(app):
    by_label(app.text_input, "Store ids").set_value("10-13")
    app.run()
    button(app, "Random sample of 4").click()
    app.run()
    assert picker(app).value == [10, 11, 12, 13]


def test_bad_id_query_shows_a_message(app):
    by_label(app.text_input, "Store ids").set_value("12, abc")
    app.run()
    assert not app.exception
    assert "'abc'" in app.error[0].value
    assert len(table(app)) == 30


def test_table_rows_can_be_added_to_the_picks(app):
    key = app.dataframe[0].key
    app.session_state[key] = {"selection": {"rows": [0, 2], "columns": [], "cells": []}}
    app.run()
    button(app, "Add 2 selected").click()
    app.run()
    assert picker(app).value == [1, 3]
    # The rows stay selected, and the button no longer offers to add them again.
    assert button(app, "Selected stores are picked").disabled
    app.session_state[key] = {"selection": {"rows": [0, 1, 2], "columns": [], "cells": []}}
    app.run()
    button(app, "Add 1 selected store").click()
    app.run()
    assert picker(app).value == [1, 3, 2]


def test_picks_and_filters_survive_a_trip_to_another_page(app):
    picker(app).set_value([3, 17, 21])
    by_label(app.text_input, "Store ids").set_value("1-20")
    app.run()
    assert app.get("plotly_chart")
    app.toggle(key="w.weekly").set_value(False)  # daily history renders too
    app.run()
    assert not app.exception
    app.switch_page("pages/data.py").run()
    # (AppTest runs a switched-to page without app.py, so the sidebar frame is not there to check.)
    assert app.session_state[state.SELECTED_STORES] == [3, 17, 21]
    app.switch_page(STORES_PAGE).run()
    assert picker(app).value == [3, 17, 21]
    assert len(table(app)) == 20


def test_new_data_clears_the_picks(app):
    picker(app).set_value([3, 17])
    app.run()
    app.switch_page("pages/data.py").run()
    app.number_input(key="w.demo_stores").set_value(10)
    next(b for b in app.button if b.label == "Use demo data").click()
    app.run()
    app.switch_page(STORES_PAGE).run()
    assert not app.exception
    assert picker(app).value == []
    assert len(table(app)) == 10


def test_parse_id_query():
    assert parse_id_query("  ") is None
    assert parse_id_query("1, 5-7;9 2") == {1, 2, 5, 6, 7, 9}
    for bad in ("x", "7-3", "1-2-3"):
        with pytest.raises(ValueError):
            parse_id_query(bad)
