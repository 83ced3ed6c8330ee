"""Saved fits on a server that several sessions share: each session sees, compares, relabels,
downloads and deletes only the fits of its own data, never deletes a fit another session has
current or that the store's pointer names, and deleting asks for a confirmation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from app_helpers import FIT_PAGE, button, current, fit, open_page, small_demo, texts
from streamlit.testing.v1 import AppTest

from bhm_core.artifacts import FitStore
from ui.session import state


def history(at):
    return at.dataframe[0].value if at.dataframe else None


def select(at, key):
    rows = history(at)
    table = at.dataframe[0]
    at.session_state[table.key] = {
        "selection": {"rows": [int(np.flatnonzero(rows["Key"] == key)[0])], "columns": [], "cells": []}
    }
    return at.run()


def use_demo(at, seed: int):
    at.switch_page("pages/data.py").run()
    at.number_input(key="w.demo_seed").set_value(seed)
    button(at, "Use demo data").click()
    at.run()
    return at.switch_page(FIT_PAGE).run()


def delete_button(at):
    return next(b for b in at.button if b.label == "Delete…")


@pytest.fixture
def fits_dir(monkeypatch, tmp_path):
    return small_demo(monkeypatch, tmp_path)


def test_a_session_sees_only_the_fits_of_its_own_data(fits_dir):
    a = open_page(FIT_PAGE)
    fit(a, steps=30)
    b = use_demo(open_page(FIT_PAGE), seed=7)  # the same stores and days, other sales
    assert "No saved fits of these data yet" in texts(b.caption)
    fit(b, steps=30)
    key_a, key_b = current(a).key, current(b).key
    assert history(b)["Key"].tolist() == [key_b]
    assert "seed 7" in history(b)["Full label"].item()
    a.run()
    assert history(a)["Key"].tolist() == [key_a]
    assert len(FitStore(fits_dir).list()) == 2
    select(b, key_b)
    assert not [x for x in b.selectbox if x.key == "fit.compare"]  # nothing of a's to compare with
    assert "Compare needs a current fit and another saved fit" in texts(b.caption)
    b.switch_page("pages/effects.py").run()
    assert not b.exception
    overlay = b.selectbox(key="w.fx.overlay")
    assert overlay.options == [] and overlay.disabled


def test_acting_on_a_fit_of_other_data_is_refused_whatever_the_widgets_send(fits_dir):
    a = open_page(FIT_PAGE)
    fit(a, steps=30)
    key_a = current(a).key

    def other_session(key):
        import streamlit as st

        from bhm_core.data.sources import DemoSource
        from bhm_core.errors import BhmError
        from ui.session import fits, state

        st.session_state[state.SOURCE] = DemoSource(n_stores=30, n_days=200, seed=7)
        fits.delete(key)
        st.write(fits.notice().text)
        st.write(fits.relabel(key, "mine now"))
        try:
            fits.zip_bytes(key)
        except BhmError as exc:
            st.write(f"download refused: {exc}")

    b = AppTest.from_function(other_session, args=(key_a,), default_timeout=60).run()
    assert not b.exception
    said = texts(b.markdown)
    assert f"Fit {key_a[:12]} was not deleted: there is no saved fit {key_a[:12]} of the data in use" in said
    assert "download refused" in said and said.count("no saved fit") == 3
    assert FitStore(fits_dir).record(key_a)["label"] != "mine now"
    assert FitStore(fits_dir).load(key_a).steps == 30


def test_a_fit_current_in_another_session_cannot_be_deleted_until_it_is_released(fits_dir):
    a = open_page(FIT_PAGE)
    fit(a, steps=30)
    key = current(a).key
    b = open_page(FIT_PAGE)  # the same data: a's fit is listed
    assert history(b).set_index("Key").loc[key, "In use"] == "another session"
    select(b, key)
    assert delete_button(b).disabled and "another session" in delete_button(b).help
    b.session_state[state.FIT_DELETE] = key  # a confirmation sent anyway
    b.run()
    assert not [x for x in b.button if x.label == "Delete for good"]
    a = use_demo(a, seed=3)  # a moves to other data: its claim goes with the fit
    assert current(a) is None
    b.run()
    assert history(b).set_index("Key").loc[key, "In use"] == ""
    delete_button(b).click()
    b.run()
    button(b, "Delete for good").click()
    b.run()
    assert not b.exception and "Deleted fit" in texts(b.info)
    assert FitStore(fits_dir).list().empty


def test_a_closed_session_releases_its_fit(fits_dir):
    import gc

    a = open_page(FIT_PAGE)
    fit(a, steps=30)
    key = current(a).key
    b = open_page(FIT_PAGE)
    assert history(b).set_index("Key").loc[key, "In use"] == "another session"
    del a
    gc.collect()
    b.run()
    assert history(b).set_index("Key").loc[key, "In use"] == ""


def test_the_stores_current_fit_cannot_be_deleted(fits_dir):
    a = open_page(FIT_PAGE)
    fit(a, steps=30)
    key = current(a).key
    FitStore(fits_dir).set_current(key)
    a = use_demo(a, seed=3)  # a lets go of the fit
    b = open_page(FIT_PAGE)
    assert history(b).set_index("Key").loc[key, "In use"] == "store's current"
    select(b, key)
    assert delete_button(b).disabled and "store's current fit" in delete_button(b).help


def test_labels_can_be_edited_from_the_history(fits_dir):
    a = open_page(FIT_PAGE)
    fit(a, steps=30)
    key = current(a).key
    select(a, key)
    a.text_input(key=f"fit.label.{key}").set_value("Promo review, first try")
    next(x for x in a.button if x.label == "Save label").click()
    a.run()
    assert not a.exception and not a.error
    assert history(a).set_index("Key").loc[key, "Label"] == "Promo review, first try"
    record = FitStore(fits_dir).record(key)
    assert record["label"] == "Promo review, first try"
    assert FitStore(fits_dir).load(key).steps == 30  # still sealed
    a.text_input(key=f"fit.label.{key}").set_value("   ")
    next(x for x in a.button if x.label == "Save label").click()
    a.run()
    assert "The label was not changed: a fit's label must be 1 to 300 characters" in texts(a.error)
    assert json.loads((FitStore(fits_dir).path(key) / "record.json").read_text())["label"] == "Promo review, first try"
