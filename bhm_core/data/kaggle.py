"""Fetch Kaggle data sets into the folders the product manages under ``data/raw/``.

The destination is never a free path: each downloadable data set has one managed folder,
``<raw root>/<name>``, named in MANAGED_DATASETS, and a download can only ever replace that folder.
It lands in a scratch folder inside the raw root, is checked (the files are there, their headers
look right, and they pass the same validation the loaders apply), and only then swaps places with
the previous copy by rename. A failed, refused or partial download never costs the user a copy
that worked, and a previous copy the product did not write itself (files put there by hand) is kept
beside the new one instead of being deleted.

Credentials are only ever described as found or not found, and where to put them: the key, the
user name and the credential file's path are never returned in a message, because the dashboard
shows this status to every visitor.
"""

from __future__ import annotations

import csv
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import types
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bhm_core.errors import DataError

logger = logging.getLogger(__name__)

KAGGLE_TOKEN_URL = "https://www.kaggle.com/settings"
# Written into every folder a download installs: a folder holding it is the product's own, so
# replacing it may remove the old copy; one without it was put there by someone else and is kept.
MANAGED_MARKER = ".bhm-download.json"

TRAIN_COLUMNS = ("Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "Promo", "StateHoliday",
                 "SchoolHoliday")
STORE_COLUMNS = ("Store", "StoreType", "Assortment", "CompetitionDistance", "CompetitionOpenSinceMonth",
                 "CompetitionOpenSinceYear", "Promo2", "Promo2SinceWeek", "Promo2SinceYear",
                 "PromoInterval")


@dataclass(frozen=True)
class ManagedDataset:
    """A Kaggle data set the product can download, and the one folder it lives in."""

    name: str      # the managed folder under the raw root
    title: str
    slug: str      # owner/name on Kaggle
    required: Mapping[str, tuple[str, ...]]  # file -> columns its header must hold
    optional: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/datasets/{self.slug}"


ROSSMANN = ManagedDataset(
    name="rossmann", title="Rossmann Store Sales", slug="pratyushakar/rossmann-store-sales",
    required=types.MappingProxyType({"train.csv": TRAIN_COLUMNS, "store.csv": STORE_COLUMNS}),
    optional=("test.csv",))
MANAGED_DATASETS: Mapping[str, ManagedDataset] = types.MappingProxyType({ROSSMANN.name: ROSSMANN})

ProgressCallback = Callable[[str], None]
ApiFactory = Callable[[], object]

# A real header is a few hundred bytes; a longer first line means this is not the CSV we expect,
# and stopping there keeps the check cheap on the 40 MB train.csv.
_MAX_HEADER_BYTES = 64 * 1024
# Kaggle ships one zip, older exports zip each file again inside it; deeper nesting is not ours.
_MAX_ARCHIVE_DEPTH = 3

_ALTERNATIVES = (
    "Or skip Kaggle: use the built-in demo data, or a local folder that holds train.csv and "
    "store.csv."
)
_HOW_TO_SET_CREDENTIALS = (
    "To enable downloads, whoever runs the server sets the environment variables KAGGLE_USERNAME "
    f"and KAGGLE_KEY, or saves the kaggle.json from {KAGGLE_TOKEN_URL} (API, Create New Token) as "
    "~/.kaggle/kaggle.json of the account that runs the server and runs "
    "`chmod 600 ~/.kaggle/kaggle.json`."
)


def managed_dataset(name: str) -> ManagedDataset:
    """The managed data set of that name; DataError naming the allowed ones otherwise."""
    try:
        return MANAGED_DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"no downloadable data set {name!r}; allowed: "
                        f"{', '.join(sorted(MANAGED_DATASETS))}") from None


def managed_dir(name: str, raw_root: str | os.PathLike) -> Path:
    """The one folder a download of data set `name` may write: ``<raw_root>/<name>``."""
    return Path(raw_root).expanduser().absolute() / managed_dataset(name).name


# --------------------------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True)
class CredentialStatus:
    """Whether Kaggle credentials were found and where; never holds the key or token."""

    found: bool
    source: str | None = None
    username: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """One paragraph any visitor may see: found or not, and where credentials go. The user
        name, the credential file's path and the problems found with it stay on the server
        (`details`, for its log)."""
        if self.found:
            return "Kaggle credentials found on the server."
        return f"No Kaggle credentials found on the server. {_HOW_TO_SET_CREDENTIALS}"

    @property
    def details(self) -> str:
        """Where the credentials came from and what is wrong with them: for the server's log."""
        who = f" for user {self.username}" if self.username else ""
        where = f"found{who} ({self.source})" if self.found else "not found"
        return " ".join((f"Kaggle credentials {where}.", *self.problems))


def credential_status(
    env: Mapping[str, str] | None = None, home: str | os.PathLike | None = None
) -> CredentialStatus:
    """Find Kaggle credentials the way the kaggle client (2.x) looks for them, in its order.

    ``env`` defaults to ``os.environ`` and ``home`` to the user's home folder; passing both keeps
    the check away from the real machine (tests, previews of another account).
    """
    env = os.environ if env is None else env
    home_dir = _home_dir(env, home)
    problems: list[str] = []
    for probe in (_access_token_source, _api_key_source, _oauth_source):
        status = probe(env, home_dir, problems)
        if status is not None:
            return status
    return CredentialStatus(found=False, problems=tuple(problems))


def _home_dir(env: Mapping[str, str], home: str | os.PathLike | None) -> Path:
    if home is not None:
        return Path(home)
    from_env = env.get("HOME") or env.get("USERPROFILE")
    return Path(from_env) if from_env else Path.home()


def kaggle_config_dir(
    env: Mapping[str, str] | None = None, home: str | os.PathLike | None = None
) -> Path:
    """The folder the kaggle client reads kaggle.json from (KAGGLE_CONFIG_DIR, ~/.kaggle or XDG)."""
    env = os.environ if env is None else env
    home_dir = _home_dir(env, home)
    configured = env.get("KAGGLE_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    legacy = home_dir / ".kaggle"
    # Mirrors kaggle 2.x: on Linux it falls back to the XDG folder only when ~/.kaggle is absent.
    if sys.platform.startswith("linux") and not legacy.exists():
        xdg = env.get("XDG_CONFIG_HOME")
        return (Path(xdg) if xdg else home_dir / ".config") / "kaggle"
    return legacy


def _access_token_source(env, home: Path, problems: list[str]) -> CredentialStatus | None:
    # Tokens beat API keys in kaggle 2.x's authenticate(), so they are reported first.
    if env.get("KAGGLE_API_TOKEN", "").strip():
        return CredentialStatus(found=True, source="KAGGLE_API_TOKEN environment variable")
    if _in_kaggle_notebook(env) and _non_empty_file(env.get("KAGGLE_API_V1_TOKEN")):
        return CredentialStatus(found=True, source="Kaggle notebook token")
    for name in ("access_token", "access_token.txt"):
        path = home / ".kaggle" / name
        if _non_empty_file(path):
            return CredentialStatus(found=True, source=f"access token file at {path}")
    return None


def _in_kaggle_notebook(env) -> bool:
    return bool(env.get("KAGGLE_KERNEL_RUN_TYPE")) and bool(env.get("KAGGLE_DATA_PROXY_URL"))


def _non_empty_file(path) -> bool:
    if not path:
        return False
    try:
        return Path(path).is_file() and Path(path).stat().st_size > 0
    except OSError:
        return False


def _api_key_source(env, home: Path, problems: list[str]) -> CredentialStatus | None:
    path = kaggle_config_dir(env, home) / "kaggle.json"
    from_file = _read_kaggle_json(path, problems)
    # The client lays KAGGLE_USERNAME / KAGGLE_KEY over kaggle.json, field by field.
    user_from_env = bool(env.get("KAGGLE_USERNAME"))
    key_from_env = bool(env.get("KAGGLE_KEY"))
    username = env.get("KAGGLE_USERNAME") or from_file.get("username")
    has_key = key_from_env or bool(from_file.get("key"))
    if username and has_key:
        return CredentialStatus(
            found=True,
            source=_api_key_origin(user_from_env, key_from_env, path),
            username=username,
            problems=tuple(problems),
        )
    if username or has_key:
        missing = "KAGGLE_KEY" if username else "KAGGLE_USERNAME"
        problems.append(
            f"Only half of the API key was found: {missing} (or its kaggle.json field) is missing."
        )
    return None


def _api_key_origin(user_from_env: bool, key_from_env: bool, path: Path) -> str:
    if user_from_env and key_from_env:
        return "environment variables"
    if not user_from_env and not key_from_env:
        return f"kaggle.json at {path}"
    return f"environment variables and kaggle.json at {path}"


def _read_kaggle_json(path: Path, problems: list[str]) -> dict[str, str]:
    """The username and whether a key is present; the key's value is dropped right here."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path} exists but cannot be read ({_reason(exc)}).")
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        problems.append(f"{path} is not valid JSON; download a fresh one from {KAGGLE_TOKEN_URL}.")
        return {}
    if not isinstance(data, dict):
        problems.append(f"{path} does not hold a JSON object with username and key.")
        return {}
    _check_private(path, problems)
    return {"username": str(data.get("username") or ""), "key": "yes" if data.get("key") else ""}


def _check_private(path: Path, problems: list[str]) -> None:
    if os.name == "nt":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o044:
        problems.append(f"{path} is readable by other users: run `chmod 600 {path}`.")


def _oauth_source(env, home: Path, problems: list[str]) -> CredentialStatus | None:
    path = home / ".kaggle" / "credentials.json"
    if _non_empty_file(path):
        source = f"Kaggle OAuth login (kaggle auth login) at {path}"
        return CredentialStatus(found=True, source=source)
    return None


# --------------------------------------------------------------------------------------------
# Download


def download_dataset(
    name: str,
    raw_root: str | os.PathLike,
    *,
    api_factory: ApiFactory | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download managed data set `name` into its folder under `raw_root` and return that folder.

    ``api_factory`` returns an object with ``authenticate()`` and
    ``dataset_download_files(dataset, path=..., unzip=..., quiet=...)``; it defaults to the real
    KaggleApi. ``on_progress`` receives one short message per step. Every failure raises
    DataError and leaves the managed folder exactly as it was; nothing outside ``raw_root`` is
    ever written, moved or removed.
    """
    dataset = managed_dataset(name)
    root = Path(raw_root).expanduser().absolute()
    dest = managed_dir(name, root)
    report = on_progress or (lambda message: None)
    try:
        _download_into(dataset, dest, api_factory or default_api_factory, report)
    except DataError as exc:
        raise DataError(f"{exc} {_unchanged_note(dest)}") from (exc.__cause__ or exc)
    except OSError as exc:
        raise DataError(
            f"Could not write the {dataset.title} download into {root}: {_reason(exc)}. Check "
            f"that {root} is writable and has room for about 100 MB. {_unchanged_note(dest)}"
        ) from exc
    report(f"{dataset.title} data ready")
    logger.info("Downloaded %s into %s", dataset.slug, dest)
    return dest


def _download_into(dataset: ManagedDataset, dest: Path, api_factory: ApiFactory,
                   report: ProgressCallback) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise DataError(f"{dest} is not a plain folder (a link or a file); a download only replaces "
                        f"a folder it can rename as a whole. Move it away first.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same parent means same filesystem, so the final swap is a rename and never a copy.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    try:
        report("Signing in to Kaggle")
        api = _authenticated_api(api_factory, dataset)
        report(f"Downloading {dataset.slug}")
        download_dir = staging / "download"
        download_dir.mkdir()
        _fetch(api, dataset, download_dir)
        report("Unpacking")
        _unpack_archives(dataset, download_dir)
        report(f"Checking {', '.join(dataset.required)}")
        ready = _collect_checked_files(dataset, download_dir, staging / "ready")
        _validate_contents(dataset, ready)
        (ready / MANAGED_MARKER).write_text(json.dumps(
            {"dataset": dataset.slug, "downloaded": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        report("Installing the new copy")
        kept = _swap_into_place(ready, dest, aside=staging / "previous")
        if kept is not None:
            report(f"The previous copy was not written by a download; it was kept as {kept.name}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _validate_contents(dataset: ManagedDataset, folder: Path) -> None:
    """The loaders' own validation on the new copy, before it replaces the old one."""
    if dataset is not ROSSMANN:
        return
    from bhm_core.data.sources import KaggleDirSource, load_dataset
    try:
        load_dataset(KaggleDirSource(str(folder)))
    except DataError as exc:
        raise _corrupt(dataset, f"its files do not pass validation ({exc})") from exc


def _unchanged_note(dest: Path) -> str:
    if dest.exists():
        return "The existing copy was left unchanged."
    return "Nothing was written."


def _authenticated_api(api_factory: ApiFactory, dataset: ManagedDataset):
    try:
        api = api_factory()
        api.authenticate()
    except DataError:
        raise
    # kaggle 2.x answers missing credentials with exit(1), so SystemExit must be caught here.
    except (Exception, SystemExit) as exc:
        raise _authentication_error(exc, dataset) from exc
    return api


def _fetch(api, dataset: ManagedDataset, target: Path) -> None:
    try:
        # We unzip ourselves: kaggle's own unzip turns a bad archive into a bare ValueError or
        # RuntimeError, which we could not tell apart from other failures.
        api.dataset_download_files(dataset.slug, path=str(target), unzip=False, quiet=True)
    except DataError:
        raise
    except (Exception, SystemExit) as exc:
        error = _download_error(exc, dataset)
        if error is None:
            raise  # local disk trouble: download_dataset words it with the destination in hand
        raise error from exc


def _swap_into_place(ready: Path, dest: Path, aside: Path) -> Path | None:
    """Rename `ready` to `dest`. A previous copy moves to `aside` (removed with the staging folder)
    when a download wrote it, else next to `dest` under a dated name, which is returned."""
    if not dest.exists():
        os.replace(ready, dest)
        return None
    ours = (dest / MANAGED_MARKER).is_file()
    if not ours:
        aside = dest.with_name(f"{dest.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(dest, aside)
    try:
        os.replace(ready, dest)
    except BaseException:
        os.replace(aside, dest)
        raise
    return None if ours else aside


# --------------------------------------------------------------------------------------------
# Unpacking and checking


def _unpack_archives(dataset: ManagedDataset, folder: Path) -> None:
    for _ in range(_MAX_ARCHIVE_DEPTH):
        archives = _zip_files(folder)
        if not archives:
            return
        for archive in archives:
            _extract(dataset, archive)
    if _zip_files(folder):
        raise _corrupt(dataset, f"it holds archives nested more than {_MAX_ARCHIVE_DEPTH} levels deep")


def _zip_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".zip")


def _extract(dataset: ManagedDataset, archive: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            # extractall strips absolute paths and "..", so members cannot escape the folder.
            bundle.extractall(archive.parent)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _corrupt(dataset, f"{archive.name} is not a complete zip archive ({_reason(exc)})") from exc
    except (NotImplementedError, RuntimeError) as exc:
        raise _corrupt(dataset, f"{archive.name} cannot be unpacked ({_reason(exc)})") from exc
    archive.unlink()


def _collect_checked_files(dataset: ManagedDataset, download_dir: Path, ready: Path) -> Path:
    ready.mkdir()
    for name, columns in dataset.required.items():
        found = _find_file(download_dir, name)
        if found is None:
            raise _corrupt(dataset, f"{name} is missing (the download held: {_listing(download_dir)})")
        _check_header(dataset, found, columns)
        os.replace(found, ready / name)
    for name in dataset.optional:
        found = _find_file(download_dir, name)
        if found is not None:
            os.replace(found, ready / name)
    return ready


def _find_file(folder: Path, name: str) -> Path | None:
    # A zip may wrap its files in a subfolder; the shallowest match is the real one.
    matches = [p for p in folder.rglob(name) if p.is_file()]
    return min(matches, key=lambda p: (len(p.parts), str(p))) if matches else None


def _listing(folder: Path, limit: int = 10) -> str:
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if not names:
        return "no files"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _check_header(dataset: ManagedDataset, path: Path, expected: tuple[str, ...]) -> None:
    with path.open("rb") as handle:
        first_line = handle.readline(_MAX_HEADER_BYTES)
        has_rows = bool(handle.read(1))
    if not first_line:
        raise _corrupt(dataset, f"{path.name} is empty")
    if not first_line.endswith(b"\n") and len(first_line) >= _MAX_HEADER_BYTES:
        raise _corrupt(dataset, f"{path.name} does not start with a CSV header line")
    columns = _parse_header(dataset, path.name, first_line)
    missing = [c for c in expected if c not in columns]
    if missing:
        raise _corrupt(
            dataset,
            f"{path.name} lacks the column(s) {', '.join(missing)}; its header is "
            f"{_clip(','.join(columns), 200)!r}, expected {','.join(expected)!r}"
        )
    if not has_rows:
        raise _corrupt(dataset, f"{path.name} has a header but no rows")


def _parse_header(dataset: ManagedDataset, name: str, line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _corrupt(dataset, f"{name} is not UTF-8 text") from exc
    row = next(csv.reader([text.strip("\r\n")]), [])
    return [cell.strip() for cell in row]


def _corrupt(dataset: ManagedDataset, reason: str) -> DataError:
    return DataError(
        f"The download of {dataset.slug} is incomplete or corrupt: {reason}. Try the download "
        f"again; if it keeps failing, download {' and '.join(dataset.required)} by hand from "
        f"{dataset.url} and use them as a local folder, or use the built-in demo data."
    )


# --------------------------------------------------------------------------------------------
# Turning the kaggle client's exceptions into messages a user can act on


def _authentication_error(exc: BaseException, dataset: ManagedDataset) -> DataError:
    if _http_status(exc) is not None:
        return _http_error(_http_status(exc), exc, dataset)
    if _is_network_error(exc):
        return _network_error(exc)
    # kaggle 2.x exits; kaggle 1.x raised OSError("Could not find kaggle.json ...").
    if isinstance(exc, (SystemExit, OSError)):
        return DataError(
            f"No Kaggle credentials were found, so the Rossmann data cannot be downloaded. "
            f"{_HOW_TO_SET_CREDENTIALS} {_ALTERNATIVES}"
        )
    return DataError(
        f"Signing in to Kaggle failed ({_describe(exc)}). Check the credentials: "
        f"{_HOW_TO_SET_CREDENTIALS} {_ALTERNATIVES}"
    )


def _download_error(exc: BaseException, dataset: ManagedDataset) -> DataError | None:
    """The message for a failed download, or None when it is a local disk error."""
    status = _http_status(exc)
    if status is not None:
        return _http_error(status, exc, dataset)
    if _is_network_error(exc):
        return _network_error(exc)
    if _looks_corrupt(exc):
        return _corrupt(dataset, _describe(exc))
    if isinstance(exc, OSError):
        return None
    return DataError(
        f"Downloading {dataset.slug} from Kaggle failed ({_describe(exc)}). Try again; if it "
        f"keeps failing, use the built-in demo data or a local folder that holds train.csv and "
        f"store.csv."
    )


def _http_error(status: int, exc: BaseException, dataset: ManagedDataset) -> DataError:
    if status == 401:
        return DataError(
            f"Kaggle rejected the server's credentials (HTTP 401 Unauthorized): the username or key "
            f"is wrong, expired or revoked. Create a new token at {KAGGLE_TOKEN_URL} (API, Create "
            f"New Token) and update KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json. "
            f"{_ALTERNATIVES}"
        )
    if status == 403:
        return DataError(
            f"Kaggle refused access to {dataset.slug} (HTTP 403 Forbidden). Open "
            f"{dataset.url} while signed in, accept the data set's terms if asked, and "
            f"check that the API key belongs to that account and has access to it. {_ALTERNATIVES}"
        )
    if status == 404:
        return DataError(
            f"Kaggle has no data set {dataset.slug} (HTTP 404 Not Found): it may have been "
            f"renamed, removed or made private. Check {dataset.url} in a browser. "
            f"{_ALTERNATIVES}"
        )
    if status == 429:
        return DataError(
            "Kaggle is limiting how often this account may download (HTTP 429 Too Many "
            f"Requests). Wait a few minutes and try again. {_ALTERNATIVES}"
        )
    kind = "Kaggle's server failed" if status >= 500 else "Kaggle refused the request"
    return DataError(
        f"{kind} (HTTP {status}: {_describe(exc)}). Try again later. {_ALTERNATIVES}"
    )


def _network_error(exc: BaseException) -> DataError:
    hint = ""
    if any("ssl" in type(err).__name__.lower() for err in _chain(exc)):
        hint = (
            " The secure connection failed; behind a company proxy, point REQUESTS_CA_BUNDLE at "
            "its certificate."
        )
    return DataError(
        f"Could not reach Kaggle ({_describe(exc)}). Check the internet connection, DNS and any "
        f"proxy settings (HTTPS_PROXY), then try again.{hint} {_ALTERNATIVES}"
    )


def _chain(exc: BaseException):
    """The exception and everything it was raised from, once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_status(exc: BaseException) -> int | None:
    for err in _chain(exc):
        # requests.HTTPError carries the response; kaggle 1.x's ApiException and urllib's
        # HTTPError carry the status themselves. A 4xx Response is falsy, hence getattr.
        candidates = (
            getattr(getattr(err, "response", None), "status_code", None),
            getattr(err, "status", None),
            getattr(err, "status_code", None),
        )
        for value in candidates:
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _is_network_error(exc: BaseException) -> bool:
    network_types = _network_error_types()
    return any(isinstance(err, network_types) for err in _chain(exc))


def _network_error_types() -> tuple[type[BaseException], ...]:
    types_: list[type[BaseException]] = [
        ConnectionError, TimeoutError, socket.gaierror, socket.herror,
    ]
    # requests and urllib3 come with kaggle; without them there is nothing of theirs to catch.
    try:
        import requests.exceptions as rex

        types_ += [rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError, rex.RetryError]
    except ImportError:
        pass
    try:
        import urllib3.exceptions as uex

        names = ("NewConnectionError", "MaxRetryError", "ProtocolError", "TimeoutError",
                 "NameResolutionError", "ProxyError", "SSLError")
        types_ += [getattr(uex, name) for name in names if hasattr(uex, name)]
    except ImportError:
        pass
    return tuple(types_)


def _looks_corrupt(exc: BaseException) -> bool:
    for err in _chain(exc):
        if isinstance(err, (zipfile.BadZipFile, zlib.error, EOFError)):
            return True
        # kaggle 2.x reports a short file or a broken archive as a bare ValueError.
        text = str(err).lower()
        if isinstance(err, (ValueError, RuntimeError)) and (
            "does not match expected size" in text or "not a valid zip" in text or "corrupt" in text
        ):
            return True
    return False


_URL_USERINFO = re.compile(r"(?<=//)[^/\s@:]+:[^/\s@]+@")
_SECRET_ENV_VARS = ("KAGGLE_KEY", "KAGGLE_API_TOKEN")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _clip(_redact(text), 240)


def _redact(text: str) -> str:
    # Exception texts from HTTP stacks can echo proxy URLs with passwords; keys never belong in UI.
    text = _URL_USERINFO.sub("***@", text)
    for name in _SECRET_ENV_VARS:
        secret = os.environ.get(name, "")
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _reason(exc: BaseException) -> str:
    return _redact(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# The real client


_API_MODULE = "kaggle.api.kaggle_api_extended"
_IMPORT_LOCK = threading.Lock()


def default_api_factory():
    """A real, not yet authenticated KaggleApi, imported without kaggle's import-time sign-in."""
    api = _load_kaggle_api_class()()
    _use_current_config_dir(api)
    return api


def _load_kaggle_api_class():
    try:
        return _import_kaggle_api_class()
    except ImportError as exc:
        missing = getattr(exc, "name", None)
        fix = "`pip install kaggle`"
        if missing and missing != "kaggle":
            fix += f" (and `pip install {missing}`, which the installed kaggle needs)"
        raise DataError(
            f"The kaggle package could not be loaded ({_describe(exc)}). Install or repair it "
            f"with {fix}. {_ALTERNATIVES}"
        ) from exc


def _import_kaggle_api_class():
    with _IMPORT_LOCK:
        if "kaggle" in sys.modules or _API_MODULE in sys.modules:
            # Someone imported the package already; its sign-in side effect is past.
            return importlib.import_module(_API_MODULE).KaggleApi
        # kaggle/__init__.py signs in on import (prints help and exits without credentials, or
        # calls the network with a token). A stand-in parent package lets us load just the
        # submodule; it is removed again so a later plain `import kaggle` gets the real package.
        spec = importlib.util.find_spec("kaggle")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("No module named 'kaggle'", name="kaggle")
        stand_in = types.ModuleType("kaggle")
        stand_in.__path__ = list(spec.submodule_search_locations)
        stand_in.__version__ = _installed_kaggle_version()  # read by its version check
        sys.modules["kaggle"] = stand_in
        try:
            return importlib.import_module(_API_MODULE).KaggleApi
        finally:
            if sys.modules.get("kaggle") is stand_in:
                del sys.modules["kaggle"]


def _installed_kaggle_version() -> str:
    try:
        return importlib.metadata.version("kaggle")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _use_current_config_dir(api) -> None:
    # KaggleApi fixes its kaggle.json path when its module is first imported; in a long-running
    # dashboard a kaggle.json created afterwards (or a new KAGGLE_CONFIG_DIR) would be ignored.
    if not hasattr(api, "config"):
        return
    config_dir = kaggle_config_dir()
    api.config_dir = str(config_dir)
    api.config = str(config_dir / getattr(api, "config_file", "kaggle.json"))
