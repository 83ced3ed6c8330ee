"""What went wrong with a Kaggle download, in words a user can act on.

The kaggle client and the HTTP stack under it raise many kinds of exceptions; these functions turn
them into one DataError each (rejected credentials, refused access, no network, a corrupt archive),
never echoing a secret: keys and proxy passwords are redacted from every text shown.
"""

from __future__ import annotations

import os
import re
import socket
import zipfile
import zlib
from typing import TYPE_CHECKING

from bhm_core.errors import DataError

if TYPE_CHECKING:  # kaggle.py holds the data sets and imports this module
    from bhm_core.data.kaggle import ManagedDataset

KAGGLE_TOKEN_URL = "https://www.kaggle.com/settings"
ALTERNATIVES = "Or skip Kaggle: use the built-in demo data, or a local folder that holds train.csv and store.csv."
HOW_TO_SET_CREDENTIALS = (
    "To enable downloads, whoever runs the server sets the environment variables KAGGLE_USERNAME "
    f"and KAGGLE_KEY, or saves the kaggle.json from {KAGGLE_TOKEN_URL} (API, Create New Token) as "
    "~/.kaggle/kaggle.json of the account that runs the server and runs "
    "`chmod 600 ~/.kaggle/kaggle.json`."
)


def corrupt(dataset: ManagedDataset, reason: str) -> DataError:
    return DataError(
        f"The download of {dataset.slug} is incomplete or corrupt: {reason}. Try the download "
        f"again; if it keeps failing, download {' and '.join(dataset.required)} by hand from "
        f"{dataset.url} and use them as a local folder, or use the built-in demo data."
    )


def authentication_error(exc: BaseException, dataset: ManagedDataset) -> DataError:
    if _http_status(exc) is not None:
        return _http_error(_http_status(exc), exc, dataset)
    if _is_network_error(exc):
        return _network_error(exc)
    # kaggle 2.x exits; kaggle 1.x raised OSError("Could not find kaggle.json ...").
    if isinstance(exc, (SystemExit, OSError)):
        return DataError(
            f"No Kaggle credentials were found, so the Rossmann data cannot be downloaded. "
            f"{HOW_TO_SET_CREDENTIALS} {ALTERNATIVES}"
        )
    return DataError(
        f"Signing in to Kaggle failed ({describe(exc)}). Check the credentials: {HOW_TO_SET_CREDENTIALS} {ALTERNATIVES}"
    )


def download_error(exc: BaseException, dataset: ManagedDataset) -> DataError | None:
    """The message for a failed download, or None when it is a local disk error."""
    status = _http_status(exc)
    if status is not None:
        return _http_error(status, exc, dataset)
    if _is_network_error(exc):
        return _network_error(exc)
    if _looks_corrupt(exc):
        return corrupt(dataset, describe(exc))
    if isinstance(exc, OSError):
        return None
    return DataError(
        f"Downloading {dataset.slug} from Kaggle failed ({describe(exc)}). Try again; if it "
        f"keeps failing, use the built-in demo data or a local folder that holds train.csv and "
        f"store.csv."
    )


def _http_error(status: int, exc: BaseException, dataset: ManagedDataset) -> DataError:
    if status == 401:
        return DataError(
            f"Kaggle rejected the server's credentials (HTTP 401 Unauthorized): the username or key "
            f"is wrong, expired or revoked. Create a new token at {KAGGLE_TOKEN_URL} (API, Create "
            f"New Token) and update KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json. "
            f"{ALTERNATIVES}"
        )
    if status == 403:
        return DataError(
            f"Kaggle refused access to {dataset.slug} (HTTP 403 Forbidden). Open "
            f"{dataset.url} while signed in, accept the data set's terms if asked, and "
            f"check that the API key belongs to that account and has access to it. {ALTERNATIVES}"
        )
    if status == 404:
        return DataError(
            f"Kaggle has no data set {dataset.slug} (HTTP 404 Not Found): it may have been "
            f"renamed, removed or made private. Check {dataset.url} in a browser. "
            f"{ALTERNATIVES}"
        )
    if status == 429:
        return DataError(
            "Kaggle is limiting how often this account may download (HTTP 429 Too Many "
            f"Requests). Wait a few minutes and try again. {ALTERNATIVES}"
        )
    kind = "Kaggle's server failed" if status >= 500 else "Kaggle refused the request"
    return DataError(f"{kind} (HTTP {status}: {describe(exc)}). Try again later. {ALTERNATIVES}")


def _network_error(exc: BaseException) -> DataError:
    hint = ""
    if any("ssl" in type(err).__name__.lower() for err in _chain(exc)):
        hint = " The secure connection failed; behind a company proxy, point REQUESTS_CA_BUNDLE at its certificate."
    return DataError(
        f"Could not reach Kaggle ({describe(exc)}). Check the internet connection, DNS and any "
        f"proxy settings (HTTPS_PROXY), then try again.{hint} {ALTERNATIVES}"
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
        ConnectionError,
        TimeoutError,
        socket.gaierror,
        socket.herror,
    ]
    # requests and urllib3 come with kaggle; without them there is nothing of theirs to catch.
    try:
        import requests.exceptions as rex

        types_ += [rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError, rex.RetryError]
    except ImportError:
        pass
    try:
        import urllib3.exceptions as uex

        names = (
            "NewConnectionError",
            "MaxRetryError",
            "ProtocolError",
            "TimeoutError",
            "NameResolutionError",
            "ProxyError",
            "SSLError",
        )
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


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return clip(_redact(text), 240)


def _redact(text: str) -> str:
    # Exception texts from HTTP stacks can echo proxy URLs with passwords; keys never belong in UI.
    text = _URL_USERINFO.sub("***@", text)
    for name in _SECRET_ENV_VARS:
        secret = os.environ.get(name, "")
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def reason(exc: BaseException) -> str:
    return _redact(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
