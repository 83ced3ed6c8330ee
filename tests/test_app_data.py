"""The Data page through Streamlit's AppTest: every source kind, good and bad input.

A small demo (30 stores x 200 days) keeps each script run well under a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bhm_core import paths
from bhm_core.data import kaggle
from bhm_core.data.demo import generate_demo, to_kaggle_csv
from bhm_core.data.sources import DemoSource
from bhm_core.errors import DataError
from ui.session import state

APP = Path(__file__).resolve().parents[1] / "app.py"
TIMEOUT = 30


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv(state.DEMO_STORES_ENV, "30")
    monkeypatch.setenv(state.DEMO_DAYS_ENV, "200")
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path))  # folders the tests make are inside it
    monkeypatch.setenv(paths.FIT_DIR_ENV, str(tmp_path / "fits"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    return at.run()


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def choose_kind(at, kind):
    at.segmented_control(key=state.W_SOURCE_KIND).set_value(kind)
    return at.run()


def button(at, label):
    return next(b for b in at.button if b.label == label)


def errors(at):
    return " ".join(e.value for e in at.error)


def kaggle_folder(tmp_path, n_stores=5, n_days=60) -> Path:
    folder = tmp_path / "rossmann"
    to_kaggle_csv(generate_demo(DemoSource(n_stores=n_stores, n_days=n_days, seed=1)), folder)
    return folder


def test_home_page_shows_demo_summary_and_coverage_map(app):
    assert not app.exception
    assert metric(app, "Stores") == "30"
    assert metric(app, "Days") == "200"
    assert "Synthetic demo data" in app.info[0].value
    assert app.get("plotly_chart"), "coverage heatmap missing"
    assert "synthetic demo data (30 stores" in " ".join(c.value for c in app.sidebar.caption)


def test_demo_size_and_seed_can_be_changed(app):
    app.number_input(key="w.demo_stores").set_value(12)
    app.number_input(key="w.demo_seed").set_value(3)
    button(app, "Use demo data").click()
    app.run()
    assert not app.exception
    assert metric(app, "Stores") == "12"
    assert app.session_state[state.SOURCE] == DemoSource(n_stores=12, n_days=200, seed=3)


def test_local_folder_in_kaggle_layout_loads(app, tmp_path):
    folder = kaggle_folder(tmp_path)
    choose_kind(app, "folder")
    app.text_input(key="w.folder_path").set_value(str(folder))
    button(app, "Load folder").click()
    app.run()
    assert not app.exception and not app.error
    assert metric(app, "Stores") == "5"
    assert metric(app, "Days") == "60"


def test_missing_folder_shows_message_and_keeps_previous_data(app, tmp_path):
    choose_kind(app, "folder")
    app.text_input(key="w.folder_path").set_value(str(tmp_path / "nowhere"))
    button(app, "Load folder").click()
    app.run()
    assert not app.exception
    assert "folder not found" in errors(app)
    assert metric(app, "Stores") == "30"  # the demo stays in use
    assert isinstance(app.session_state[state.SOURCE], DemoSource)


def upload(at, name, text):
    at.file_uploader(key="w.csv_upload").set_value((name, text.encode(), "text/csv"))
    return at.run()


def test_csv_without_sales_column_is_refused_with_a_message(app):
    choose_kind(app, "csv")
    upload(app, "no_sales.csv", "Store,Date,Customers\n1,2015-01-01,10\n1,2015-01-02,12\n")
    assert not app.exception
    assert "Sales" in errors(app)
    assert button(app, "Load CSV").disabled
    assert metric(app, "Stores") == "30"


def test_csv_with_other_column_names_loads_after_mapping(app):
    rows = "".join(f"{s},2015-01-{d:02d},{100 * s + d}\n" for s in (7, 8, 9) for d in range(1, 15))
    choose_kind(app, "csv")
    upload(app, "shops.csv", "shop,day,revenue\n" + rows)
    assert "Store, Date, Sales" in errors(app)  # nothing matches our names yet
    for field, column in (("Store *", "shop"), ("Date *", "day"), ("Sales *", "revenue")):
        next(s for s in app.selectbox if s.label == field).set_value(column)
    app.run()
    assert not app.error
    button(app, "Load CSV").click()
    app.run()
    assert not app.exception and not app.error
    assert metric(app, "Stores") == "3"
    assert metric(app, "Days") == "14"


def test_csv_with_bad_values_shows_the_library_message(app):
    choose_kind(app, "csv")
    upload(app, "bad.csv", "Store,Date,Sales\n1,2015-01-01,100\n1,2015-01-02,lots\n")
    button(app, "Load CSV").click()
    app.run()
    assert not app.exception
    assert "'Sales' is not a number" in errors(app)
    assert metric(app, "Stores") == "30"


@pytest.fixture
def no_kaggle_credentials(monkeypatch, tmp_path):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path / "data"))


@pytest.fixture
def kaggle_credentials(no_kaggle_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "server-account")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")


def test_kaggle_form_offers_only_managed_folders_and_no_credential_details(app, kaggle_credentials):
    choose_kind(app, "kaggle")
    assert not app.text_input, "a free destination path is back"
    picker = app.selectbox(key="w.kaggle_dataset")
    assert picker.options == ["Rossmann Store Sales (into data/raw/rossmann)"]
    shown = " ".join(e.value for e in (*app.success, *app.warning, *app.info))
    assert "found on the server" in shown and "server-account" not in shown and ".kaggle/kaggle.json" not in shown


def test_kaggle_download_needs_credentials(app, no_kaggle_credentials):
    choose_kind(app, "kaggle")
    assert "No Kaggle credentials found" in app.warning[0].value
    assert button(app, "Download from Kaggle").disabled
    assert button(app, "Use the downloaded copy").disabled


def test_kaggle_download_failure_is_shown(app, tmp_path, monkeypatch, kaggle_credentials):
    def refuse(name, raw_root, **kwargs):
        raise DataError("Kaggle said no (HTTP 403 Forbidden).")

    monkeypatch.setattr(kaggle, "download_dataset", refuse)
    choose_kind(app, "kaggle")
    button(app, "Download from Kaggle").click()
    app.run()
    assert not app.exception
    assert "HTTP 403" in errors(app)
    assert metric(app, "Stores") == "30"


def test_kaggle_download_success_switches_to_the_downloaded_data(app, tmp_path, monkeypatch, kaggle_credentials):
    seen = {}

    def fake_download(name, raw_root, *, on_progress=None, **kwargs):
        seen.update(name=name, raw_root=Path(raw_root))
        on_progress("Downloading")
        Path(raw_root).mkdir(parents=True)
        return kaggle_folder(Path(raw_root), n_stores=4, n_days=30)

    monkeypatch.setattr(kaggle, "download_dataset", fake_download)
    choose_kind(app, "kaggle")
    button(app, "Download from Kaggle").click()
    app.run()
    assert not app.exception and not app.error
    assert seen == {"name": "rossmann", "raw_root": tmp_path / "data" / "raw"}
    assert metric(app, "Stores") == "4"
    app.run()
    assert not button(app, "Use the downloaded copy").disabled


def test_coverage_grid_keeps_the_majority_status_of_each_block():
    from bhm_core.data.summaries import block_mode, status_grid

    codes = np.array([[0, 0, 3, 3, 3, 2, 2], [0, 2, 2, 1, 1, 1, 2]], np.int8)
    # 2 x 3 blocks: the last block is 2 x 1 plus padding, which never counts.
    assert block_mode(codes, 2, 3).tolist() == [[0, 1, 2]]
    cube = generate_demo(DemoSource(n_stores=30, n_days=200)).cube()
    assert status_grid(cube)["z"].shape == (30, 200)
    weekly = status_grid(cube, max_days=50, max_stores=10)
    assert weekly["days_per_cell"] == 7 and weekly["stores_per_cell"] == 3
    assert weekly["z"].shape == (10, 29) and weekly["y"][:2] == ["1–3", "4–6"]


def test_the_data_page_never_waits_for_jax(tmp_path):
    """A fresh server's first page: no JAX/NumPyro import before it is drawn (ui.session.warmup.warm_up
    loads them afterwards in the background)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from streamlit.testing.v1 import AppTest; "
        f"at = AppTest.from_file({str(APP)!r}, default_timeout=60).run(); "
        "assert not at.exception; print(sorted(m for m in ('jax', 'numpyro') if m in sys.modules))"
    )
    env = {**os.environ, state.DEMO_STORES_ENV: "30", state.DEMO_DAYS_ENV: "200", "BHM_FIT_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=APP.parent, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
