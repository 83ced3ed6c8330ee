"""Who can reach the dashboard and what it can read: bound to this machine by default, an
optional password or login before any page, and the local-folder source kept to allowed roots."""

from __future__ import annotations

import hmac
import os
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bhm_core import paths
from bhm_core.data.demo import generate_demo, to_kaggle_csv
from bhm_core.data.sources import DemoSource, KaggleDirSource, folder_within
from bhm_core.errors import DataError
from ui.session import state
from ui.views import access

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"


@pytest.fixture(autouse=True)
def small(monkeypatch, tmp_path):
    monkeypatch.setenv(state.DEMO_STORES_ENV, "30")
    monkeypatch.setenv(state.DEMO_DAYS_ENV, "200")
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(paths.FIT_DIR_ENV, str(tmp_path / "fits"))
    for name in (access.PASSWORD_ENV, access.ALLOWED_EMAILS_ENV, paths.FOLDER_ROOTS_ENV):
        monkeypatch.delenv(name, raising=False)


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def test_the_server_listens_on_this_machine_only_by_default():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_without_a_password_the_dashboard_is_open():
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception and at.title[0].value == "Data"


def test_a_password_is_asked_once_before_any_page(monkeypatch):
    monkeypatch.setenv(access.PASSWORD_ENV, "correct horse")
    monkeypatch.setattr(access, "FAILED_PASSWORD_DELAY", 0.0)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Sales forecasting"]
    assert not at.metric and not at.sidebar.caption  # neither the page nor the data's name
    at.switch_page("pages/fit.py").run()  # a page run on its own asks as well
    assert not at.exception and [t.value for t in at.title] == ["Sales forecasting"] and not at.number_input
    at.text_input(key=access.W_PASSWORD).set_value("Correct horse")
    at.button[0].click()
    at.run()
    assert "Wrong password" in texts(at.error) and not at.metric
    at.text_input(key=access.W_PASSWORD).set_value("correct horse")
    at.button[0].click()
    at.run()
    assert not at.exception and at.title[0].value == "Model & fit"
    at.switch_page("pages/data.py").run()  # once per session
    assert at.title[0].value == "Data" and at.metric


def test_the_password_is_compared_in_constant_time(monkeypatch):
    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: seen.append((len(a), len(b))) or real(a, b))
    assert access.password_matches("secret", "secret")
    assert not access.password_matches("secre", "secret") and not access.password_matches("", "secret")
    assert seen == [(32, 32)] * 3  # digests: the length of a guess is not compared either


AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "not-a-real-secret",
    "client_id": "dashboard",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
}


def login_app(user: dict, **auth) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {**AUTH, **auth}
    at.user = user
    return at.run()


def test_with_login_configured_a_visitor_must_log_in(monkeypatch):
    monkeypatch.setenv(access.PASSWORD_ENV, "ignored when login is configured")
    at = login_app({"is_logged_in": False})
    assert not at.exception and not at.metric
    assert "Log in to use the dashboard" in texts(at.markdown)
    import importlib.util

    if importlib.util.find_spec("authlib") is None:
        assert "install it with pip install 'Authlib>=1.3.2'" in texts(at.error)
    else:
        assert [b.label for b in at.button] == ["Log in"]


def test_a_logged_in_user_sees_the_dashboard_and_the_allowlist_holds(monkeypatch):
    at = login_app({"is_logged_in": True, "email": "ana@example.com"})
    assert not at.exception and at.title[0].value == "Data"
    assert [b.label for b in at.sidebar.button] == ["Log out"]
    monkeypatch.setenv(access.ALLOWED_EMAILS_ENV, "bo@example.com, Ana@Example.com")
    assert login_app({"is_logged_in": True, "email": "ana@example.com"}).metric
    monkeypatch.setenv(access.ALLOWED_EMAILS_ENV, "bo@example.com")
    refused = login_app({"is_logged_in": True, "email": "ana@example.com"})
    assert not refused.metric and "ana@example.com may not use this dashboard" in texts(refused.error)


def test_named_providers_get_a_button_each():
    assert access._providers({**AUTH}) == [None]
    named = {"redirect_uri": "x", "cookie_secret": "y", "google": {"client_id": "a"}, "okta": {"client_id": "b"}}
    assert access._providers(named) == ["google", "okta"]


# ---------------------------------------------------------------------------------------------
# the local-folder source


def kaggle_folder(folder: Path) -> Path:
    to_kaggle_csv(generate_demo(DemoSource(n_stores=4, n_days=40, seed=1)), folder)
    return folder


def load_folder(at: AppTest, text: str) -> AppTest:
    at.segmented_control(key=state.W_SOURCE_KIND).set_value("folder").run()
    at.text_input(key="w.folder_path").set_value(text)
    next(b for b in at.button if b.label == "Load folder").click()
    return at.run()


def test_folders_outside_the_data_root_are_refused_and_the_roots_named(tmp_path):
    outside = kaggle_folder(tmp_path / "elsewhere")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.segmented_control(key=state.W_SOURCE_KIND).set_value("folder").run()
    root = paths.data_root().resolve()
    assert str(root) in texts(at.caption)
    for typed in (str(outside), "../elsewhere", "/etc", "/no/such/folder"):
        load_folder(at, typed)
        assert not at.exception
        message = texts(at.error)
        assert "outside the folders the dashboard may read" in message and str(root) in message, typed
        assert isinstance(at.session_state[state.SOURCE], DemoSource)
    inside = kaggle_folder(paths.data_root() / "mine")
    load_folder(at, "mine")  # relative: from the data root
    assert not at.error and at.session_state[state.SOURCE] == KaggleDirSource(str(inside.resolve()))
    load_folder(at, "not-there")
    assert "folder not found" in texts(at.error)


def test_links_out_of_an_allowed_folder_are_not_followed(tmp_path):
    secret = kaggle_folder(tmp_path / "secret")
    root = paths.data_root()
    root.mkdir(parents=True)
    (root / "shortcut").symlink_to(secret)
    with pytest.raises(DataError, match="shortcut: outside the folders"):
        folder_within(root / "shortcut", paths.folder_roots())
    planted = root / "planted"
    planted.mkdir()
    (planted / "train.csv").symlink_to(secret / "train.csv")
    (planted / "store.csv").write_text("Store\n1\n")
    with pytest.raises(DataError, match="train.csv in .*planted links outside"):
        folder_within(planted, paths.folder_roots())
    inner = kaggle_folder(root / "inner")
    (root / "alias").symlink_to(inner)  # a link that stays inside is fine
    assert folder_within(root / "alias", paths.folder_roots()) == inner.resolve()


def test_more_folder_roots_can_be_allowed(monkeypatch, tmp_path):
    shared = kaggle_folder(tmp_path / "shared" / "rossmann")
    monkeypatch.setenv(paths.FOLDER_ROOTS_ENV, os.pathsep.join([str(tmp_path / "shared"), str(tmp_path / "more")]))
    assert paths.folder_roots()[1:] == ((tmp_path / "shared").resolve(), (tmp_path / "more").resolve())
    at = load_folder(AppTest.from_file(str(APP), default_timeout=30).run(), str(shared))
    assert not at.exception and not at.error
    assert at.session_state[state.SOURCE] == KaggleDirSource(str(shared.resolve()))
