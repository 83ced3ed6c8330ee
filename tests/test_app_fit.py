"""The Model & fit page through AppTest: priors and what they imply, settings, background fits
(cache, cancel, divergence, library errors), and the saved-fit history."""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import (
    FIT_PAGE,
    button,
    chart,
    current,
    fit,
    fit_button,
    open_page,
    small_demo,
    texts,
    values,
    wait_for_job,
)

from bhm_core import artifacts
from bhm_core.artifacts import FitStore
from bhm_core.errors import FitDivergedError
from bhm_core.forecast import prior_check
from bhm_core.model.config import Priors
from ui.session import state


@pytest.fixture
def app(monkeypatch, tmp_path):
    small_demo(monkeypatch, tmp_path)
    return open_page(FIT_PAGE)


def prior_key(group, name):
    return f"{state.W_PRIOR}.{group}.{name}"


def test_renders_priors_check_and_settings_without_a_fit(app):
    assert not app.exception and not app.error
    assert "No stores picked" in app.info[0].value
    assert fit_button(app).label == "Fit 20 stores" and not fit_button(app).disabled
    assert "No current fit yet" in texts(app.info)
    titles = [e.label for e in app.expander]
    assert any("Promo" in t for t in titles) and any("Noise" in t for t in titles)
    figure = chart(app, "prior.predictive")
    assert [t["name"] for t in figure["data"]] == ["implied by the priors", "observed"]
    assert "prior's draws fall inside the data's range" in texts(app.caption)


def test_changing_a_prior_updates_its_density_and_the_predictive_check(app):
    before_density = values(chart(app, "prior.promo")["data"][0], "x")
    before_check = values(chart(app, "prior.predictive")["data"][0], "y")
    app.number_input(key=prior_key("promo", "mu_loc")).set_value(0.5)
    app.number_input(key=prior_key("promo", "mu_scale")).set_value(0.2)
    app.run()
    assert not app.exception and not app.error
    after = values(chart(app, "prior.promo")["data"][0], "x")
    assert not np.array_equal(after, before_density)
    assert 1.2 < np.median(after) < 2.0  # centred near exp(0.5) on the multiplier axis
    assert not np.array_equal(values(chart(app, "prior.predictive")["data"][0], "y"), before_check)


def test_centring_the_weekday_prior_brings_the_predictive_onto_the_data(app):
    button(app, "Centre weekday level").click()
    app.run()
    centred = app.number_input(key=prior_key("weekday", "mu_loc")).value
    assert 7 < centred < 10  # log of a few thousand euros a day
    for group in ("state_holiday", "store_variant"):  # tighter priors on the other intercepts
        app.number_input(key=prior_key(group, "mu_scale")).set_value(0.3)
        app.number_input(key=prior_key(group, "sigma_scale")).set_value(0.3)
    app.number_input(key=prior_key("weekday", "mu_scale")).set_value(0.3)
    app.number_input(key=prior_key("weekday", "sigma_scale")).set_value(0.3)
    app.run()
    assert "The priors cover the range of the data" in texts(app.caption)
    button(app, "Reference priors").click()
    app.run()
    assert app.number_input(key=prior_key("weekday", "mu_loc")).value == 0.0


def test_invalid_prior_and_setting_show_the_field_and_disable_fit(app):
    app.number_input(key=prior_key("promo", "mu_scale")).set_value(0.0)
    app.run()
    assert not app.exception
    assert "Promo: Uncertainty of the group mean: 0 is not allowed (allowed: (0, 100])" in texts(app.error)
    assert "Priors." not in texts(app.error)
    assert fit_button(app).disabled
    app.number_input(key=prior_key("promo", "mu_scale")).set_value(1.0)
    app.number_input(key=f"{state.W_SVI}.learning_rate").set_value(0.0)
    app.run()
    assert not app.exception
    message = texts(app.error)
    assert "Learning rate: 0 is not allowed (allowed: (0, 10])" in message
    assert "FitConfig" not in message
    assert fit_button(app).disabled


def test_fit_makes_a_current_fit_and_an_identical_fit_comes_from_the_cache(app, tmp_path):
    fit(app)
    assert not app.exception, app.exception
    now = current(app)
    assert now is not None and now.saved and not now.from_cache
    assert len(now.result.losses) == 40 and list(now.result.store_ids) == list(range(1, 21))
    assert "Fitted 20 stores" in texts(app.success)
    assert "New fit" in texts(app.markdown)
    assert len(FitStore(tmp_path / "fits").list()) == 1
    fit_button(app).click()
    app.run()
    assert state.FIT_JOB not in app.session_state  # no thread: the saved fit loads at once
    assert current(app).from_cache and current(app).key == now.key
    assert "Loaded from the cache" in texts(app.success)
    assert "From cache: instant" in texts(app.markdown)


def test_picked_stores_are_fitted(monkeypatch, tmp_path):
    small_demo(monkeypatch, tmp_path)
    at = open_page("pages/stores.py")
    at.multiselect(key=state.W_STORE_PICKER).set_value([4, 9, 11])
    at.run()
    at.switch_page(FIT_PAGE).run()
    assert fit_button(at).label == "Fit 3 stores"
    fit(at, steps=30)
    assert list(current(at).result.store_ids) == [4, 9, 11]


def test_cancel_stops_the_fit_and_keeps_the_previous_one(app):
    fit(app)
    previous = current(app)
    app.number_input(key=f"{state.W_SVI}.steps").set_value(200_000)
    app.run()
    fit_button(app).click()
    app.run()
    assert fit_button(app).disabled  # one fit at a time
    button(app, "Cancel").click()
    app.run()
    wait_for_job(app, timeout=60)
    assert not app.exception
    assert "Fit cancelled after" in texts(app.warning)
    assert current(app) is previous
    button(app, "Use the partial fit anyway").click()
    app.run()
    partial = current(app)
    assert not partial.saved and len(partial.result.losses) < 200_000
    assert "Not saved" in texts(app.markdown)


def test_divergence_shows_the_message_and_keeps_the_last_good_fit(app, monkeypatch):
    fit(app)
    good = current(app)

    def diverge(store, cube, config, priors, **kwargs):
        raise FitDivergedError(
            "the fit diverged at step 7: the loss became non-finite. Lower the learning rate (now 0.03)",
            step=7,
            last_good=good.result,
        )

    monkeypatch.setattr(artifacts, "fit_or_load", diverge)
    fit(app, steps=55)
    assert not app.exception
    assert "diverged at step 7" in texts(app.error)
    assert current(app) is good
    assert button(app, "Use the partial fit anyway")


@pytest.mark.parametrize(
    "error", [NotImplementedError("store minibatches are not implemented yet"), RuntimeError("XLA ran out of memory")]
)
def test_library_errors_are_shown_without_a_traceback(app, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(artifacts, "fit_or_load", fail)
    app.toggle(key=f"{state.W_SVI}.minibatch").set_value(True)
    app.run()
    fit(app, batch_size=5)
    assert not app.exception
    assert str(error) in texts(app.error)
    assert current(app) is None


def test_minibatch_fit_runs_through_the_page(app):
    app.toggle(key=f"{state.W_SVI}.minibatch").set_value(True)
    app.run()
    fit(app, steps=50, batch_size=5)
    assert not app.exception and not app.error
    assert current(app).result.config.batch_size == 5
    assert history_rows(app)["Batch"].tolist() == [5]


def test_the_observation_law_is_chosen_on_the_page_and_fitted_with(app):
    law = app.segmented_control(key=f"{state.W_SVI}.likelihood")
    assert law.value == "negative_binomial" and "Student-t on log sales" in law.options
    law.set_value("log_student_t")
    # A session may still hold settings-file fields an older page kept beside the widgets.
    app.session_state[state.SVI_EXTRA] = {"warmup_steps": 0, "likelihood": "negative_binomial"}
    app.run()
    fit(app, steps=40)
    assert not app.exception and not app.error
    assert current(app).result.config.likelihood == "log_student_t"
    assert np.isfinite(current(app).result.losses).all()


def history_rows(at):
    return at.dataframe[0].value


def select_history_row(at, row):
    table = at.dataframe[0]
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_history_reopens_compares_and_deletes_fits(app, tmp_path):
    fit(app, steps=30)
    first = current(app)
    app.number_input(key=prior_key("promo", "mu_loc")).set_value(0.3)
    fit(app, steps=45)
    second = current(app)
    rows = history_rows(app)
    assert len(rows) == 2 and set(rows["Key"]) == {first.key, second.key}
    assert rows.loc[rows["Key"] == second.key, "Current"].item()
    assert "changed: promo" in rows.loc[rows["Key"] == second.key, "Priors"].item()
    assert set(rows["Usable"]) == {"yes"}
    assert rows.loc[rows["Key"] == second.key, "In use"].item() == "this session"
    label = rows.loc[rows["Key"] == second.key, "Full label"].item()
    assert label.startswith("synthetic demo data (30 stores, seed 0) · 20 stores (1–20) · 45 steps · changed: ")
    assert "priors of promo" in label
    shown = rows.loc[rows["Key"] == second.key, "Label"].item()
    assert shown == label.removeprefix("synthetic demo data (30 stores, seed 0) · ")  # the data are known

    select_history_row(app, int(np.flatnonzero(rows["Key"] == first.key)[0]))
    assert app.get("download_button")
    button(app, "Reopen").click()
    app.run()
    assert not app.exception
    assert current(app).key == first.key and current(app).from_cache
    assert app.number_input(key=f"{state.W_SVI}.steps").value == 30  # its settings are back
    assert app.number_input(key=prior_key("promo", "mu_loc")).value == 0.0

    compare = app.selectbox(key="fit.compare")
    assert compare.options == [f"{shown} ({second.key[:8]})"]  # labels, never bare hashes
    compare.set_value(second.key)
    app.run()
    assert len(chart(app, "fit.compare_losses")["data"]) == 2

    rows = history_rows(app)
    select_history_row(app, int(np.flatnonzero(rows["Key"] == second.key)[0]))
    assert not [b for b in app.button if b.label == "Delete for good"]  # a confirmation comes first
    button(app, "Delete…").click()
    app.run()
    assert second.key[:12] in texts(app.warning)
    button(app, "Keep it").click()
    app.run()
    assert not [b for b in app.button if b.label == "Delete for good"] and len(history_rows(app)) == 2
    button(app, "Delete…").click()
    app.run()
    button(app, "Delete for good").click()
    app.run()
    assert not app.exception
    assert list(FitStore(tmp_path / "fits").list()["key"]) == [first.key]
    assert len(history_rows(app)) == 1
    assert "Deleted fit" in texts(app.info)


def test_download_zip_holds_the_arrays_and_record(app):
    import io
    import zipfile

    from ui.session import fits

    fit(app, steps=30)
    with zipfile.ZipFile(io.BytesIO(fits.zip_bytes(current(app).key))) as archive:
        names = sorted(archive.namelist())
    assert [n.split("/")[-1] for n in names] == ["arrays.npz", "record.json"]


def test_prior_predictive_helper_matches_the_model_structure():
    from bhm_core.data.sources import DemoSource, load_dataset

    cube = load_dataset(DemoSource(n_stores=12, n_days=120)).cube()
    vague = prior_check.prior_predictive(cube, Priors())
    tight = Priors().with_group("weekday", mu_loc=8.0, mu_scale=1e-3, sigma_scale=1e-3)
    for group in set(cube.design.groups) - {"weekday"}:  # every other group the features have
        tight = tight.with_group(group, mu_loc=0.0, mu_scale=1e-3, sigma_scale=1e-3)
    sharp = prior_check.prior_predictive(cube, tight)
    assert np.allclose(sharp, 8.0 / np.log(10), atol=0.01)  # eta = weekday level only
    assert np.std(vague) > 1.0


def test_new_data_drops_the_fit_and_old_fits_cannot_be_reopened(app):
    fit(app, steps=30)
    app.switch_page("pages/data.py").run()
    app.number_input(key="w.demo_stores").set_value(12)
    button(app, "Use demo data").click()
    app.run()
    app.switch_page(FIT_PAGE).run()
    assert not app.exception
    assert current(app) is None
    assert not app.dataframe  # the fit of the other data is not listed
    assert "No saved fits of these data yet" in texts(app.caption)
    app.switch_page("pages/forecast.py").run()
    assert "No current fit yet" in app.info[0].value


def test_history_reads_only_records_and_handles_old_and_stale_ones(app, tmp_path, monkeypatch):
    import json

    from bhm_core import artifacts as artifacts_module

    fit(app, steps=30)
    key = current(app).key
    store = FitStore(tmp_path / "fits")
    listed = store.list().iloc[0]
    assert (listed["optimizer"], listed["schedule"], listed["seed"], listed["n_stores"]) == ("adam", "cosine", 0, 20)
    assert not listed["stale"] and listed["priors"] == Priors().to_dict()
    assert store.store_ids(key).tolist() == list(range(1, 21))
    # A record written before it held the store ids: they come from the npz, arrays unread.
    record_path = store.path(key) / "record.json"
    record = json.loads(record_path.read_text())
    del record["store_ids"]
    record_path.write_text(json.dumps(record))
    assert store.store_ids(key).tolist() == list(range(1, 21))
    app.run()
    assert history_rows(app)["Usable"].tolist() == ["yes"]
    # Made with other library versions: listed as such, cannot be reopened, and refitted on demand.
    monkeypatch.setattr(artifacts_module, "library_versions", lambda: {"bhm_core": "0.0.0"})
    assert store.list()["stale"].tolist() == [True]
    app.run()
    assert history_rows(app)["Usable"].tolist() == ["other versions"]
    assert store.get(key)[0] is None and "made with" in store.get(key)[1]


def settings_code(app) -> str:
    return next(c.value for c in app.code if c.value.startswith("[fit]"))


def test_settings_round_trip_through_toml_exactly(app):
    from dataclasses import replace

    from bhm_core.model.config import FitConfig
    from bhm_core.model.settings import from_toml, to_toml

    original = from_toml(settings_code(app))
    fit_settings = FitConfig(
        steps=150,
        learning_rate=0.02,
        optimizer="clipped_adam",
        schedule="constant",
        final_lr_fraction=0.1,
        warmup_steps=10,
        clip_norm=5.0,
        particles=2,
        batch_size=8,
        chunk_steps=25,
        seed=7,
        likelihood="log_student_t",
    )
    priors = replace(original.priors, r_mu_loc=3.25, promo=replace(original.priors.promo, mu_scale=0.4))
    text = to_toml(replace(original, fit=fit_settings, priors=priors))
    app.text_area(key="w.settings_text").set_value(text)
    button(app, "Load the pasted settings").click()
    app.run()
    assert not app.exception and not app.error
    assert "Loaded the pasted settings into the editors" in texts(app.success)
    assert app.number_input(key=f"{state.W_SVI}.learning_rate").value == 0.02
    assert app.segmented_control(key=f"{state.W_SVI}.likelihood").value == "log_student_t"
    assert app.number_input(key=prior_key("dispersion", "r_mu_loc")).value == 3.25
    # What the download writes is what was loaded, to the byte (the code block drops the last newline).
    assert settings_code(app) == text.rstrip("\n")
    assert from_toml(settings_code(app)) == from_toml(text) != original


def test_a_bad_settings_file_names_the_widget_and_loads_nothing(app):
    before = app.number_input(key=f"{state.W_SVI}.steps").value
    app.text_area(key="w.settings_text").set_value("[fit]\nsteps = 300\nlearning_rate = 0\n")
    button(app, "Load the pasted settings").click()
    app.run()
    message = texts(app.error)
    assert "Learning rate: 0 is not allowed (allowed: (0, 10])" in message and "Nothing was loaded" in message
    assert "fit.learning_rate" not in message
    assert app.number_input(key=f"{state.W_SVI}.steps").value == before


def test_the_posterior_becomes_the_priors(app):
    fit(app)
    button(app, "Use this fit's posterior as priors").click()
    app.run()
    assert "posterior, its scales widened" in texts(app.success)
    promo = list(current(app).result.feature_names).index("promo")
    centre = float(current(app).result.params["theta_mu"].loc[promo])
    assert app.number_input(key=prior_key("promo", "mu_loc")).value == pytest.approx(centre, abs=1e-6)
