"""Uploads on a shared server: streamed into a private folder of the session under the data root,
removed once nothing uses them or once they are old; and the calendar ahead, uploaded or found
in the data folder, kept for the session beside the data it belongs to."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from streamlit.runtime.uploaded_file_manager import UploadedFile
from streamlit.testing.v1 import AppTest

from bhm_core import paths
from bhm_core.data.demo import generate_demo, to_kaggle_csv
from bhm_core.data.sources import CsvSource, DemoSource, KaggleDirSource
from ui.session import loaders, state, uploads

APP = Path(__file__).resolve().parents[1] / "app.py"
ROWS = "Store,Date,Sales\n" + "".join(f"{s},2015-01-{d:02d},{100 * s + d}\n" for s in (1, 2) for d in range(1, 15))
CALENDAR = "Id,Store,DayOfWeek,Date,Open,Promo,StateHoliday,SchoolHoliday\n" + "".join(
    f"{i},{s},4,2015-09-{d:02d},1,{d % 2},0,0\n" for i, (s, d) in enumerate((s, d) for s in (1, 2, 3) for d in (1, 2))
)


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv(state.DEMO_STORES_ENV, "30")
    monkeypatch.setenv(state.DEMO_DAYS_ENV, "200")
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(paths.FIT_DIR_ENV, str(tmp_path / "fits"))
    monkeypatch.delenv(uploads.MAX_AGE_ENV, raising=False)
    loaders.sweep_uploads_at_start.clear()
    return AppTest.from_file(str(APP), default_timeout=30).run()


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def upload_csv(at, name: str, text: str) -> AppTest:
    at.segmented_control(key=state.W_SOURCE_KIND).set_value("csv").run()
    at.file_uploader(key="w.csv_upload").set_value((name, text.encode(), "text/csv"))
    return at.run()


def load_csv(at) -> AppTest:
    next(b for b in at.button if b.label == "Load CSV").click()
    return at.run()


def saved_files() -> list[Path]:
    return sorted(p for p in paths.uploads_root().rglob("*") if p.is_file())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_upload_is_streamed_into_a_private_folder_under_the_data_root(app, monkeypatch):
    import sys

    real = UploadedFile.getvalue

    def whole(self):  # AppTest reads its own fake uploads whole; the dashboard must not
        frame = sys._getframe(1)
        if "/ui/" in frame.f_code.co_filename or "/pages/" in frame.f_code.co_filename:
            raise AssertionError("the upload was read whole into memory")
        return real(self)

    monkeypatch.setattr(UploadedFile, "getvalue", whole)
    upload_csv(app, "shops.csv", ROWS)
    load_csv(app)
    assert not app.exception and not app.error
    (path,) = saved_files()
    source = app.session_state[state.SOURCE]
    assert isinstance(source, CsvSource) and Path(source.path) == path and path.name == "shops.csv"
    assert path.read_text() == ROWS
    session_folder = path.parent.parent
    assert session_folder.parent == paths.uploads_root()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(session_folder) == 0o700
    assert mode(paths.uploads_root()) == 0o700


def test_a_replaced_upload_is_removed_unless_the_data_in_use_reads_it(app):
    upload_csv(app, "first.csv", ROWS)
    (first,) = saved_files()
    upload_csv(app, "second.csv", ROWS.replace(",100", ",900"))  # never loaded: replaced
    (second,) = saved_files()
    assert second.name == "second.csv" and not first.exists()
    load_csv(app)
    upload_csv(app, "second.csv", ROWS)  # the same name again: its own folder, the loaded file stays
    assert len(saved_files()) == 2 and second.exists()
    load_csv(app)
    assert not second.exists() and len(saved_files()) == 1
    app.switch_page("pages/stores.py").run()
    app.switch_page("pages/data.py").run()  # the uploader comes back empty: the data in use stay
    assert saved_files() == [Path(app.session_state[state.SOURCE].path)]


def test_other_sessions_uploads_are_swept_once_they_are_old(app, monkeypatch):
    root = paths.uploads_root()
    old, recent = uploads.private_folder(root, "a" * 32), uploads.private_folder(root, "b" * 32)
    for folder in (old, recent):
        (uploads.private_folder(folder) / "x.csv").write_text("Store\n")
    past = time.time() - 25 * 3600
    for path in [*sorted(old.rglob("*"), reverse=True), old]:
        os.utime(path, (past, past))
    upload_csv(app, "shops.csv", ROWS)  # a new upload sweeps
    assert not old.exists() and recent.exists()
    monkeypatch.setenv(uploads.MAX_AGE_ENV, "0.5")
    assert uploads.max_age_seconds() == 1800
    for path in [*sorted(recent.rglob("*"), reverse=True), recent]:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    loaders.sweep_uploads_at_start.clear()
    AppTest.from_file(str(APP), default_timeout=30).run()  # the app's start sweeps too
    assert not recent.exists() and saved_files()  # this session's own upload stays
    for bad in ("soon", "-1", "0", "inf"):
        monkeypatch.setenv(uploads.MAX_AGE_ENV, bad)
        assert uploads.max_age_seconds() == uploads.DEFAULT_MAX_AGE_HOURS * 3600


def test_an_unsafe_file_name_stays_inside_its_folder(tmp_path):
    import io

    session = uploads.private_folder(tmp_path)
    path = uploads.stream_to(session, "../../etc/.passwd", io.BytesIO(b"a,b\n"))
    assert path.parent.parent == session and path.name == "passwd" and mode(path) == 0o600


# ---------------------------------------------------------------------------------------------
# the calendar ahead


def calendar_uploader(at):
    return next(u for u in at.get("file_uploader") if u.proto.label.startswith("Upload a calendar ahead"))


def upload_calendar(at, text: str, name: str = "test.csv") -> AppTest:
    key = calendar_uploader(at).key
    at.file_uploader(key=key).set_value((name, text.encode(), "text/csv"))
    return at.run()


def test_an_uploaded_calendar_is_kept_for_the_data_it_was_uploaded_for(app):
    upload_calendar(app, CALENDAR)
    assert not app.exception and not app.error
    choice = app.session_state[state.CALENDAR]
    assert choice.calendar.store_ids.tolist() == [1, 2, 3] and choice.source == DemoSource(30, 200, 0)
    assert Path(choice.path).parent.parent.parent == paths.uploads_root()
    shown = texts(app.success)
    assert "Calendar ahead in use: test.csv (uploaded). 3 stores, 2015-09-01 to 2015-09-02." in shown
    app.switch_page("pages/stores.py").run()
    app.switch_page("pages/data.py").run()  # the uploader is empty again; the calendar stays
    assert "Calendar ahead in use: test.csv (uploaded)" in texts(app.success)
    assert Path(choice.path).is_file()
    next(b for b in app.button if b.label == "Stop using the uploaded calendar").click()
    app.run()
    assert state.CALENDAR not in app.session_state and "Calendar ahead in use" not in texts(app.success)


def test_a_bad_calendar_is_refused_with_the_data_checks_message(app):
    upload_calendar(app, "Store,Date,Open\n1,2015-09-01,maybe\n")
    assert not app.exception
    assert "column 'Open' is not 0/1 (or blank)" in texts(app.error)
    assert state.CALENDAR not in app.session_state
    upload_calendar(app, "Date,Open\n2015-09-01,1\n", name="other.csv")
    assert "missing required column(s) ['Store']" in texts(app.error)


def kaggle_folder_with_calendar(root: Path) -> Path:
    folder = root / "rossmann"
    to_kaggle_csv(generate_demo(DemoSource(n_stores=3, n_days=40, seed=1)), folder)
    (folder / "test.csv").write_text(CALENDAR)
    return folder


def test_a_data_folders_test_csv_is_its_calendar_unless_one_is_uploaded(app):
    folder = kaggle_folder_with_calendar(paths.data_root())
    app.segmented_control(key=state.W_SOURCE_KIND).set_value("folder").run()
    app.text_input(key="w.folder_path").set_value("rossmann")
    next(b for b in app.button if b.label == "Load folder").click()
    app.run()
    assert app.session_state[state.SOURCE] == KaggleDirSource(str(folder.resolve()))
    assert "Calendar ahead in use: this folder's test.csv. 3 stores" in texts(app.info)
    upload_calendar(app, CALENDAR.replace("2015-09-0", "2015-10-0"), name="october.csv")
    assert "october.csv (uploaded)" in texts(app.success) and "this folder's test.csv" not in texts(app.info)


def test_the_forecast_side_reads_the_calendar_of_the_data_in_use(app, tmp_path):
    folder = kaggle_folder_with_calendar(paths.data_root())

    def page(folder):
        import streamlit as st

        from bhm_core.data.sources import DemoSource, KaggleDirSource
        from ui.session import loaders, state

        st.session_state[state.SOURCE] = KaggleDirSource(folder)
        calendar = loaders.current_calendar()
        st.write(f"folder: {calendar.store_ids.tolist()} from {calendar.first}")
        st.session_state[state.SOURCE] = DemoSource()
        st.write(f"demo: {loaders.current_calendar()}")

    at = AppTest.from_function(page, args=(str(folder),), default_timeout=30).run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["folder: [1, 2, 3] from 2015-09-01", "demo: None"]
