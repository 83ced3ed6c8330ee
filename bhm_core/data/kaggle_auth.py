"""Kaggle credentials and the real kaggle client.

Credentials are only ever described by where they come from; the key or token itself is never
returned, logged or put into a message. What any visitor of the dashboard sees is `summary`: found
or not, and where they go.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bhm_core.data.kaggle_errors import ALTERNATIVES, HOW_TO_SET_CREDENTIALS, KAGGLE_TOKEN_URL, describe, reason
from bhm_core.errors import DataError


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
        return f"No Kaggle credentials found on the server. {HOW_TO_SET_CREDENTIALS}"

    @property
    def details(self) -> str:
        """Where the credentials came from and what is wrong with them: for the server's log."""
        who = f" for user {self.username}" if self.username else ""
        where = f"found{who} ({self.source})" if self.found else "not found"
        return " ".join((f"Kaggle credentials {where}.", *self.problems))


def credential_status(env: Mapping[str, str] | None = None, home: str | os.PathLike | None = None) -> CredentialStatus:
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


def kaggle_config_dir(env: Mapping[str, str] | None = None, home: str | os.PathLike | None = None) -> Path:
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
        problems.append(f"Only half of the API key was found: {missing} (or its kaggle.json field) is missing.")
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
        problems.append(f"{path} exists but cannot be read ({reason(exc)}).")
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
            f"The kaggle package could not be loaded ({describe(exc)}). Install or repair it with {fix}. {ALTERNATIVES}"
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
