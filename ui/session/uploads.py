"""Uploaded files on disk: streamed into a private folder per session, removed when done with.

    <uploads root>/<session folder>/<upload id>/<file name>     folders 0700, files 0600

Every upload gets its own folder, so a new file of the same name never changes the data another
upload of this session still loads from. A session keeps only the uploads something still uses
(the latest of each uploader, the data source and the calendar in use); whole session folders
untouched for longer than BHM_UPLOAD_MAX_AGE_HOURS (24 by default) go when the app starts and
whenever a new upload arrives. A session in use touches its folder on every run, so only the
uploads of sessions long gone are swept. No Streamlit here: ui.session.loaders holds the
session's side.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

MAX_AGE_ENV = "BHM_UPLOAD_MAX_AGE_HOURS"
DEFAULT_MAX_AGE_HOURS = 24.0
FOLDER_MODE, FILE_MODE = 0o700, 0o600
CHUNK = 1 << 20  # bytes copied at a time: an upload is never held whole a second time
PARTIAL = ".part-"  # a file being written; renamed to its name once complete

log = logging.getLogger(__name__)


def max_age_seconds() -> float:
    """BHM_UPLOAD_MAX_AGE_HOURS in seconds; a value that is not a positive number is logged and
    the default is used (a server setting, not the visitor's input)."""
    text = os.environ.get(MAX_AGE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_AGE_HOURS * 3600
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not hours > 0 or hours == float("inf"):
        log.warning("%s must be a number of hours above 0, got %r; using %s", MAX_AGE_ENV, text, DEFAULT_MAX_AGE_HOURS)
        return DEFAULT_MAX_AGE_HOURS * 3600
    return hours * 3600


def private_folder(parent: Path, name: str | None = None) -> Path:
    """A folder only the server's user can open (mode 0700 whatever the umask), new unless named."""
    parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(parent, FOLDER_MODE)
    folder = parent / (name or uuid.uuid4().hex)
    folder.mkdir(mode=FOLDER_MODE, exist_ok=name is not None)
    os.chmod(folder, FOLDER_MODE)
    return folder


def safe_name(name: str) -> str:
    """The file's own name, in characters that are safe on any file system."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(name)).name).lstrip(".")
    return cleaned or "upload.csv"


def stream_to(session_folder: Path, name: str, reader) -> Path:
    """Copy `reader` (a binary file object) chunk by chunk into a new upload folder of the session;
    the file appears under its name only once complete."""
    folder = private_folder(session_folder)
    target = folder / safe_name(name)
    partial = folder / f"{PARTIAL}{uuid.uuid4().hex}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(partial, flags, FILE_MODE), "wb") as out:
            shutil.copyfileobj(reader, out, CHUNK)
        os.chmod(partial, FILE_MODE)
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target


def remove_unused(session_folder: Path, keep) -> list[str]:
    """Remove the session's upload folders that hold none of the paths in `keep`."""
    kept = {Path(p).parent for p in keep if p}
    removed = []
    try:
        entries = list(session_folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry not in kept:
            _remove(entry)
            removed.append(entry.name)
    return removed


def touch(session_folder: Path) -> None:
    """Mark a session's uploads as in use (the sweep judges folders by their latest change)."""
    with contextlib.suppress(OSError):  # not there (yet, or any more): nothing to keep
        os.utime(session_folder)


def sweep(root: Path, max_age: float, now: float | None = None) -> list[str]:
    """Remove session folders (and stray files) under `root` untouched for longer than max_age
    seconds. Never raises: a folder that cannot be cleaned still serves."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if now - _newest_change(entry) > max_age:
            _remove(entry)
            removed.append(entry.name)
    return removed


def _newest_change(path: Path) -> float:
    """The latest modification of `path` or of anything up to two levels inside it."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                newest = max(newest, child.lstat().st_mtime)
                if child.is_dir() and not child.is_symlink():
                    newest = max([newest, *(f.lstat().st_mtime for f in child.iterdir())])
        return newest
    except OSError:
        return time.time()  # changing as we look: someone is using it


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
