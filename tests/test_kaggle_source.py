"""Kaggle download of the Rossmann data: success paths, every failure mode, credential status.

No test touches the network: a fake stands in for KaggleApi and raises the exceptions the real
client (kaggle 2.2.4, and 1.x where it differed) raises.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from bhm_core.data import kaggle as ks
from bhm_core.data import kaggle_auth
from bhm_core.errors import DataError

requests = pytest.importorskip("requests")
urllib3_exceptions = pytest.importorskip("urllib3.exceptions")

SECRET = "0123456789abcdef-top-secret-key"
REPO_ROOT = Path(__file__).resolve().parents[1]

TRAIN = (
    "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n"
    "1,5,2015-07-31,5263,555,1,1,0,1\n"
    "2,5,2015-07-31,6064,625,1,1,0,1\n"
)
STORE = (
    "Store,StoreType,Assortment,CompetitionDistance,CompetitionOpenSinceMonth,"
    "CompetitionOpenSinceYear,Promo2,Promo2SinceWeek,Promo2SinceYear,PromoInterval\n"
    "1,c,a,1270,9,2008,0,,,\n"
    '2,a,a,570,11,2007,1,13,2010,"Jan,Apr,Jul,Oct"\n'
)
TEST = "Id,Store,DayOfWeek,Date,Open,Promo,StateHoliday,SchoolHoliday\n1,1,4,2015-09-17,1,1,0,0\n"


def good_files() -> dict[str, bytes]:
    return {"train.csv": TRAIN.encode(), "store.csv": STORE.encode(), "test.csv": TEST.encode()}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


class FakeKaggleApi:
    """Writes the given files where dataset_download_files is told to, or raises."""

    def __init__(self, files=None, *, auth_error=None, download_error=None):
        self.files = files if files is not None else {}
        self.auth_error = auth_error
        self.download_error = download_error
        self.calls = []

    def authenticate(self):
        if self.auth_error is not None:
            raise self.auth_error

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False):
        self.calls.append({"dataset": dataset, "path": path, "unzip": unzip, "quiet": quiet})
        target = Path(path)
        for name, data in self.files.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(data)
        if self.download_error is not None:
            raise self.download_error


def factory(api):
    return lambda: api


def http_error(status: int) -> Exception:
    response = requests.Response()
    response.status_code = status
    response.url = "https://api.kaggle.com/v1/datasets.DatasetApiService/DownloadDataset"
    return requests.HTTPError(f"{status} Client Error for url: {response.url}", response=response)


class ApiException(Exception):
    """Shape of kaggle 1.x's kaggle.rest.ApiException: the status sits on the exception."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"({status})\nReason: {reason}")
        self.status = status
        self.reason = reason


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test may see the developer's own Kaggle credentials or write to their home."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


@pytest.fixture
def dest(tmp_path) -> Path:
    return ks.managed_dir("rossmann", tmp_path / "project" / "data" / "raw")


@pytest.fixture
def good_copy(dest) -> dict[str, bytes]:
    """A previous, working download; failures must leave it byte for byte."""
    dest.mkdir(parents=True)
    files = {"train.csv": b"old train\n", "store.csv": b"old store\n", "notes/extra.txt": b"x"}
    for name, data in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    return files


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under the folder but the marker a download leaves (tested on its own)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ks.MANAGED_MARKER
    }


def assert_no_leftovers(dest: Path) -> None:
    left = sorted(p.name for p in dest.parent.iterdir())
    assert left == ([dest.name] if dest.exists() else []), left


# ------------------------------------------------------------------------------ success


def test_managed_folder_is_the_data_sets_own_under_the_raw_root(tmp_path):
    assert ks.managed_dir("rossmann", tmp_path / "raw") == tmp_path / "raw" / "rossmann"
    for name in ("..", ".", "", "../fits", "/etc", "rossmann/../..", None):
        with pytest.raises(DataError, match="allowed: rossmann"):
            ks.managed_dir(name, tmp_path / "raw")


def test_unknown_data_set_writes_nothing(tmp_path):
    api = FakeKaggleApi(good_files())
    with pytest.raises(DataError, match="no downloadable data set"):
        ks.download_dataset("..", tmp_path / "raw", api_factory=factory(api))
    assert api.calls == [] and not (tmp_path / "raw").exists()


def test_downloads_zipped_dataset(dest):
    api = FakeKaggleApi({"rossmann-store-sales.zip": zip_bytes(good_files())})
    messages = []

    result = ks.download_dataset("rossmann", dest.parent, api_factory=factory(api), on_progress=messages.append)

    assert result == dest
    assert snapshot(dest) == good_files()
    assert api.calls[0]["dataset"] == ks.ROSSMANN.slug
    assert dest.parent in Path(api.calls[0]["path"]).parents  # same filesystem as the target
    assert messages and "ready" in messages[-1]
    assert_no_leftovers(dest)


def test_downloads_plain_csv_files(dest):
    files = good_files()
    del files["test.csv"]  # optional
    ks.download_dataset("rossmann", dest.parent, api_factory=factory(FakeKaggleApi(files)))

    assert snapshot(dest) == files
    assert_no_leftovers(dest)


def test_unpacks_per_file_zips_and_subfolders(dest):
    inner = {f"{name}.zip": zip_bytes({name: data}) for name, data in good_files().items()}
    outer = zip_bytes({f"rossmann/{name}": data for name, data in inner.items()})
    ks.download_dataset(
        "rossmann", dest.parent, api_factory=factory(FakeKaggleApi({"rossmann-store-sales.zip": outer}))
    )

    assert snapshot(dest) == good_files()
    assert_no_leftovers(dest)


def test_a_second_download_replaces_the_first_completely(dest):
    ks.download_dataset("rossmann", dest.parent, api_factory=factory(FakeKaggleApi(good_files())))
    (dest / "notes.txt").write_text("added after the download")
    newer = {**good_files(), "test.csv": TEST.replace("2015-09-17", "2015-09-18").encode()}
    ks.download_dataset("rossmann", dest.parent, api_factory=factory(FakeKaggleApi(newer)))

    assert snapshot(dest) == newer
    assert json.loads((dest / ks.MANAGED_MARKER).read_text())["dataset"] == ks.ROSSMANN.slug
    assert_no_leftovers(dest)


def test_a_copy_the_download_did_not_write_is_kept_beside_the_new_one(dest, good_copy):
    ks.download_dataset("rossmann", dest.parent, api_factory=factory(FakeKaggleApi(good_files())))

    assert snapshot(dest) == good_files()
    kept = [p for p in dest.parent.iterdir() if p.name.startswith("rossmann.replaced-")]
    assert len(kept) == 1 and snapshot(kept[0]) == good_copy


def test_nothing_outside_the_managed_folder_is_touched(tmp_path):
    """A download writes, renames and removes only inside <raw root>/rossmann (and its own
    scratch folder there): the project, the fits and a sibling data set stay byte for byte."""
    project = tmp_path / "project"
    files = {
        "app.py": b"print()",
        "data/fits/abc/record.json": b"{}",
        "data/raw/other/train.csv": b"x",
        "data/uploads/u.csv": b"y",
        "data/raw/notes.txt": b"z",
    }
    for name, data in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(data)
    for _ in range(2):  # the second replaces the first
        ks.download_dataset("rossmann", project / "data" / "raw", api_factory=factory(FakeKaggleApi(good_files())))
    after = {k: v for k, v in snapshot(project).items() if not k.startswith("data/raw/rossmann/")}
    assert after == files
    assert sorted(p.name for p in (project / "data" / "raw").iterdir()) == ["notes.txt", "other", "rossmann"]


def test_a_link_in_place_of_the_managed_folder_is_refused(dest, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    dest.parent.mkdir(parents=True)
    dest.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DataError, match="not a plain folder"):
        ks.download_dataset("rossmann", dest.parent, api_factory=factory(FakeKaggleApi(good_files())))
    assert dest.is_symlink() and snapshot(elsewhere) == {"keep.txt": b"mine"}


def test_files_that_fail_validation_never_replace_the_copy(dest, good_copy):
    bad = {**good_files(), "train.csv": TRAIN.replace("5263", "lots").encode()}
    message = expect_failure(dest, FakeKaggleApi(bad), "do not pass validation")
    assert "'Sales' is not a number" in message and "left unchanged" in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def expect_failure(dest, api, match: str) -> str:
    with pytest.raises(DataError, match=match) as caught:
        ks.download_dataset("rossmann", dest.parent, api_factory=factory(api))
    return str(caught.value)


@pytest.mark.parametrize(
    "auth_error",
    [SystemExit(1), OSError("Could not find kaggle.json. Make sure it's located in ~/.kaggle.")],
    ids=["kaggle2-exit", "kaggle1-oserror"],
)
def test_no_credentials(dest, good_copy, auth_error):
    api = FakeKaggleApi(good_files(), auth_error=auth_error)
    message = expect_failure(dest, api, "No Kaggle credentials")

    for hint in ("KAGGLE_USERNAME", "KAGGLE_KEY", "~/.kaggle/kaggle.json", "chmod 600", "demo data"):
        assert hint in message
    assert "left unchanged" in message
    assert api.calls == []
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_no_credentials_without_previous_copy_writes_nothing(dest):
    expect_failure(dest, FakeKaggleApi(auth_error=SystemExit(1)), "No Kaggle credentials")
    assert not dest.exists()
    assert_no_leftovers(dest)


@pytest.mark.parametrize(
    "error", [http_error(401), ApiException(401, "Unauthorized")], ids=["requests", "apiexception"]
)
def test_rejected_credentials(dest, good_copy, error, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    message = expect_failure(dest, FakeKaggleApi(download_error=error), "401")

    assert "rejected the server's credentials" in message
    assert "alice" not in message  # who the server signs in as is not for every visitor
    assert SECRET not in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_rejected_token_during_authenticate(dest, good_copy):
    message = expect_failure(dest, FakeKaggleApi(auth_error=http_error(401)), "401")
    assert "rejected the server's credentials" in message
    assert snapshot(dest) == good_copy


@pytest.mark.parametrize("error", [http_error(403), ApiException(403, "Forbidden")], ids=["requests", "apiexception"])
def test_forbidden(dest, good_copy, error):
    message = expect_failure(dest, FakeKaggleApi(download_error=error), "403")

    assert "accept the data set's terms" in message
    assert ks.ROSSMANN.url in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


@pytest.mark.parametrize("error", [http_error(404), ApiException(404, "Not Found")], ids=["requests", "apiexception"])
def test_not_found(dest, good_copy, error):
    message = expect_failure(dest, FakeKaggleApi(download_error=error), "404")

    assert ks.ROSSMANN.slug in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("Failed to resolve 'api.kaggle.com'"),
        requests.exceptions.ConnectTimeout("timed out"),
        urllib3_exceptions.NewConnectionError(None, "Failed to establish a new connection"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=["requests", "timeout", "urllib3", "dns", "reset"],
)
def test_no_network(dest, good_copy, error):
    # Half-written files must not survive either: the client may have started writing.
    api = FakeKaggleApi({"rossmann-store-sales.zip": b"PK\x03\x04partial"}, download_error=error)
    message = expect_failure(dest, api, "Could not reach Kaggle")

    assert "internet connection" in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_network_error_hides_proxy_password(dest):
    error = requests.exceptions.ProxyError("Cannot connect to proxy http://bob:hunter22@proxy:3128")
    message = expect_failure(dest, FakeKaggleApi(download_error=error), "Could not reach Kaggle")
    assert "hunter22" not in message


def test_rate_limited(dest, good_copy):
    message = expect_failure(dest, FakeKaggleApi(download_error=http_error(429)), "429")
    assert "Wait" in message
    assert snapshot(dest) == good_copy


def test_size_mismatch_reported_by_client_is_corrupt(dest, good_copy):
    error = ValueError("Downloaded file size (10) does not match expected size (20)")
    expect_failure(dest, FakeKaggleApi(download_error=error), "incomplete or corrupt")
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_missing_store_csv(dest, good_copy):
    files = good_files()
    del files["store.csv"]
    message = expect_failure(
        dest, FakeKaggleApi({"rossmann-store-sales.zip": zip_bytes(files)}), "incomplete or corrupt"
    )

    assert "store.csv is missing" in message
    assert "train.csv" in message  # lists what did arrive
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


@pytest.mark.parametrize(
    "payload",
    [zip_bytes(good_files())[:200], zip_bytes(good_files())[:-30], b"<html>rate limited</html>"],
    ids=["truncated-start", "truncated-end", "not-a-zip"],
)
def test_bad_zip(dest, good_copy, payload):
    api = FakeKaggleApi({"rossmann-store-sales.zip": payload})
    message = expect_failure(dest, api, "incomplete or corrupt")

    assert "rossmann-store-sales.zip" in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_corrupt_member_in_zip(dest, good_copy):
    data = bytearray(zip_bytes(good_files()))
    offset = data.index(b"train.csv") + len(b"train.csv") + 5  # inside the compressed body
    data[offset] ^= 0xFF
    expect_failure(dest, FakeKaggleApi({"rossmann-store-sales.zip": bytes(data)}), "incomplete or corrupt")
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("store.csv", b"Store,Type\n1,a\n", "store.csv lacks the column"),
        ("train.csv", b"", "train.csv is empty"),
        ("train.csv", TRAIN.splitlines()[0].encode() + b"\n", "no rows"),
        ("train.csv", b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "train.csv"),
    ],
    ids=["wrong-header", "empty", "header-only", "binary"],
)
def test_bad_csv(dest, good_copy, name, content, reason):
    files = good_files()
    files[name] = content
    message = expect_failure(dest, FakeKaggleApi(files), "incomplete or corrupt")

    assert reason in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_a_bad_header_is_refused_before_the_body_is_read(dest, monkeypatch):
    files = good_files()
    files["train.csv"] = b"Store,Date\n" + b"9,9\n" * 200_000
    monkeypatch.setattr(ks, "_validate_contents", lambda *a: pytest.fail("validated a bad header"))
    expect_failure(dest, FakeKaggleApi(files), "lacks the column")


def test_quoted_header_with_bom_is_accepted(dest):
    files = good_files()
    header, _, body = STORE.partition("\n")
    quoted = ",".join(f'"{c}"' for c in header.split(","))
    files["store.csv"] = ("\ufeff" + quoted + "\r\n" + body).encode()
    ks.download_dataset("rossmann", dest.parent, api_factory=factory(FakeKaggleApi(files)))
    assert (dest / "store.csv").read_bytes() == files["store.csv"]


def test_unexpected_client_error_is_a_data_error(dest, good_copy):
    message = expect_failure(dest, FakeKaggleApi(download_error=RuntimeError("boom")), "failed")
    assert "boom" in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_failing_progress_callback_still_cleans_up(dest, good_copy):
    def explode(message):
        if message.startswith("Installing"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ks.download_dataset(
            "rossmann", dest.parent, api_factory=factory(FakeKaggleApi(good_files())), on_progress=explode
        )
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


def test_failed_swap_puts_previous_copy_back(dest, good_copy, monkeypatch):
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name == "ready":
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(ks.os, "replace", replace)
    message = expect_failure(dest, FakeKaggleApi(good_files()), "Could not write")

    assert "left unchanged" in message
    assert snapshot(dest) == good_copy
    assert_no_leftovers(dest)


# ------------------------------------------------------------------------------ credentials


def write_kaggle_json(folder: Path, mode: int = 0o600, content: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kaggle.json"
    path.write_text(content if content is not None else f'{{"username": "alice", "key": "{SECRET}"}}')
    path.chmod(mode)
    return path


def assert_secret_hidden(status) -> None:
    for text in (repr(status), str(status), status.summary, status.details, repr(vars(status))):
        assert SECRET not in text
    # Every visitor sees the summary: no user name, no path of the server's credential file.
    assert "alice" not in status.summary and "/" not in status.summary.replace("~/.kaggle/", "")


def test_credentials_from_environment(tmp_path):
    status = kaggle_auth.credential_status(env={"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": SECRET}, home=tmp_path)

    assert status.found
    assert status.source == "environment variables"
    assert status.username == "alice"
    assert "alice" in status.details
    assert status.summary == "Kaggle credentials found on the server."
    assert_secret_hidden(status)


def test_credentials_from_kaggle_json_in_home(isolated_home):
    path = write_kaggle_json(isolated_home / ".kaggle")

    status = kaggle_auth.credential_status()  # reads the monkeypatched HOME

    assert status.found
    assert status.source == f"kaggle.json at {path}"
    assert status.username == "alice"
    assert status.problems == ()
    assert_secret_hidden(status)


def test_kaggle_json_readable_by_others_is_flagged(tmp_path):
    path = write_kaggle_json(tmp_path / ".kaggle", mode=0o644)
    status = kaggle_auth.credential_status(env={}, home=tmp_path)

    assert status.found
    if os.name != "nt":
        assert any(f"chmod 600 {path}" in p for p in status.problems)
    assert_secret_hidden(status)


def test_kaggle_config_dir_is_honoured(tmp_path):
    path = write_kaggle_json(tmp_path / "elsewhere")
    status = kaggle_auth.credential_status(env={"KAGGLE_CONFIG_DIR": str(path.parent)}, home=tmp_path / "h")
    assert status.source == f"kaggle.json at {path}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG fallback is Linux-only")
def test_xdg_config_dir_when_dot_kaggle_is_absent(tmp_path):
    path = write_kaggle_json(tmp_path / "xdg" / "kaggle")
    status = kaggle_auth.credential_status(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, home=tmp_path)
    assert status.source == f"kaggle.json at {path}"


def test_key_in_env_and_username_in_file(tmp_path):
    path = write_kaggle_json(tmp_path / ".kaggle", content='{"username": "alice"}')
    status = kaggle_auth.credential_status(env={"KAGGLE_KEY": SECRET}, home=tmp_path)

    assert status.found
    assert status.source == f"environment variables and kaggle.json at {path}"
    assert_secret_hidden(status)


def test_access_token_is_reported_without_its_value(tmp_path):
    status = kaggle_auth.credential_status(env={"KAGGLE_API_TOKEN": SECRET}, home=tmp_path)
    assert status.found and "KAGGLE_API_TOKEN" in status.source
    assert_secret_hidden(status)

    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "access_token").write_text(SECRET)
    status = kaggle_auth.credential_status(env={}, home=tmp_path)
    assert status.found and "access token file" in status.source
    assert_secret_hidden(status)


def test_no_credentials_status(tmp_path):
    status = kaggle_auth.credential_status(env={}, home=tmp_path)

    assert not status.found
    assert status.source is None
    assert "KAGGLE_USERNAME" in status.summary and "kaggle.json" in status.summary


def test_half_a_key_is_not_enough(tmp_path):
    status = kaggle_auth.credential_status(env={"KAGGLE_USERNAME": "alice"}, home=tmp_path)
    assert not status.found
    assert any("KAGGLE_KEY" in p for p in status.problems)


def test_broken_kaggle_json_is_explained(tmp_path):
    write_kaggle_json(tmp_path / ".kaggle", content='{"username": "alice", "key": ')
    status = kaggle_auth.credential_status(env={}, home=tmp_path)
    assert not status.found
    assert any("not valid JSON" in p for p in status.problems)


def test_status_is_frozen(tmp_path):
    status = kaggle_auth.credential_status(env={}, home=tmp_path)
    with pytest.raises(AttributeError):
        status.found = True


# ------------------------------------------------------------------------------ real client


def test_default_factory_imports_without_signing_in(tmp_path):
    """kaggle/__init__.py signs in on import; the default factory must not trigger that.

    Runs in a fresh interpreter so the import really happens. Where the installed kaggle cannot
    be imported at all, the factory must say so as a DataError instead.
    """
    script = textwrap.dedent(
        """
        import sys
        from bhm_core.data import kaggle_auth as ks
        from bhm_core.errors import DataError
        try:
            api = ks.default_api_factory()
        except DataError as exc:
            print("DATAERROR", exc)
        else:
            assert callable(api.authenticate) and callable(api.dataset_download_files)
            assert "kaggle" not in sys.modules, "stand-in parent package left behind"
            print("LOADED", type(api).__name__)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / ".config"), PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert "Authentication required" not in done.stdout
    if done.stdout.startswith("DATAERROR"):
        assert "pip install" in done.stdout
    else:
        assert done.stdout.startswith("LOADED KaggleApi")
