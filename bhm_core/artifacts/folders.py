"""The on-disk layout of a fit store: complete version folders, and one link per fit naming its own.

    ROOT/<key>                   symlink -> .v-<key>-<id>   (the fit's current copy)
    ROOT/.v-<key>-<id>/          arrays.npz + record.json, complete before anything names it
    ROOT/.tmp-<id>/              a copy being written; renamed to .v-... once complete
    ROOT/.lnk-<id>               a new link, renamed over ROOT/<key> in one step
    ROOT/current                 the key of the store's current fit (the one a retrain replaces)

Renaming a symlink over another is atomic, so a reader of ROOT/<key> sees the old copy or the new
one, never none and never half of one: a second writer of the same fit never leaves a moment
without a good copy. A folder cannot be renamed over a non-empty folder, which is why the link.

Nothing outside ROOT is ever reached through a key: keys are hex, a link is followed only to a
version folder of that key directly under ROOT (a real folder, not itself a link), and files are
opened without following links. Leftovers of a crash (temporary folders, links, unreferenced
versions) are removed once they are older than STALE_SECONDS, so a live writer's are kept.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

from bhm_core.errors import ArtifactError

FILES = ("arrays.npz", "record.json")
TEMP_PREFIXES = (".tmp-", ".lnk-", ".del-")
VERSION = re.compile(r"\.v-([0-9a-f]{1,64})-[0-9a-f]{32}")
KEY = re.compile(r"[0-9a-f]{1,64}")
CURRENT = "current"  # not hex, so never taken for a key
# Older than this, a temporary folder is a crash's leftover: a save writes its files in seconds and
# a live writer's folder is younger (its files' times count, and a writer touches it before linking).
STALE_SECONDS = 300.0


def check_key(key) -> str:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ArtifactError(f"not a fit key: {key!r} (expected 1 to 64 hex digits)")
    return key


def new_id() -> str:
    return uuid.uuid4().hex


def current_version(root: Path, key: str) -> Path | None:
    """The folder holding the fit's current copy: its version folder, a folder written by an older
    format (a real folder named by the key), or None when there is no fit of that key."""
    entry = root / key
    if entry.is_symlink():
        try:
            target = os.readlink(entry)
        except FileNotFoundError:  # deleted as we looked
            return None
        match = VERSION.fullmatch(target)
        if match is None or match.group(1) != key:
            raise ArtifactError(f"saved fit {key} links to {target!r}, not to a version of it in {root}")
        folder = root / target
        return folder if folder.is_dir() and not folder.is_symlink() else None
    return entry if entry.is_dir() else None


def open_file(folder: Path, name: str):
    """A binary handle on a fit's file, refusing a symlink in its place (it could lead anywhere)."""
    return os.fdopen(os.open(folder / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def write_version(root: Path, key: str, write) -> Path:
    """A complete, synced version folder of `key`: write(folder) fills a temporary folder, which is
    renamed once everything in it is on disk. Nothing names it yet."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{new_id()}"
    tmp.mkdir()
    try:
        write(tmp)
        for name in FILES:
            _fsync(tmp / name)
        version = root / f".v-{key}-{new_id()}"
        os.rename(tmp, version)
    finally:
        remove_tree(tmp)
    _fsync_folder(root)
    return version


def link_new(root: Path, key: str, version: Path) -> bool:
    """Name `version` as the fit's copy if there is none yet; False if another writer was first."""
    os.utime(version)  # fresh again: a sweep in another process must not take it for a leftover
    try:
        os.symlink(version.name, root / key)
    except FileExistsError:
        return False
    _fsync_folder(root)
    return True


def link_replace(root: Path, key: str, version: Path) -> Path | None:
    """Make `version` the fit's copy in one rename; the folder it replaced (to remove), if any."""
    entry = root / key
    previous = _linked_folder(root, key)
    os.utime(version)
    if entry.is_dir() and not entry.is_symlink():  # an older format's real folder: moved aside
        aside = root / f".del-{new_id()}"
        os.rename(entry, aside)
        previous = aside
    link = root / f".lnk-{new_id()}"
    os.symlink(version.name, link)
    try:
        os.replace(link, entry)
    finally:
        if link.is_symlink():
            link.unlink()
    _fsync_folder(root)
    return previous if previous != version else None


def unlink_key(root: Path, key: str) -> None:
    """The fit vanishes in one step (its link, or its older-format folder renamed away); its
    folder is removed after."""
    entry = root / key
    folder = _linked_folder(root, key)
    if entry.is_symlink():
        entry.unlink(missing_ok=True)  # another deleter may have been first
    elif folder is not None:
        aside = root / f".del-{new_id()}"
        try:
            os.rename(entry, aside)
        except FileNotFoundError:
            return
        folder = aside
    if folder is not None:
        remove_tree(folder)


def _linked_folder(root: Path, key: str) -> Path | None:
    """current_version, or None where the key's link leads somewhere it should not: the link
    itself is ours to replace or remove, its target is not."""
    try:
        return current_version(root, key)
    except ArtifactError:
        return None


def read_current(root: Path) -> str | None:
    """The key the `current` file names, or None when there is none, or it is not a key, or no fit
    of that key exists (a hand-edited or stale pointer never names a missing fit)."""
    try:
        with open_file(root, CURRENT) as handle:
            text = handle.read(128).decode("ascii").strip()
        if KEY.fullmatch(text) and current_version(root, text) is not None:
            return text
    except (OSError, UnicodeDecodeError, ArtifactError):
        pass
    return None


def write_current(root: Path, key: str | None) -> None:
    """Point `current` at `key` (None: remove it) in one rename, so a reader sees the old key or
    the new one, never a half-written file."""
    target = root / CURRENT
    if key is None:
        target.unlink(missing_ok=True)
        _fsync_folder(root)
        return
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{new_id()}"
    try:
        with open(tmp, "x", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_folder(root)


def remove_tree(path: Path) -> None:
    """Remove a folder of ours under the store (never a link's target)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def sweep(root: Path, now: float | None = None) -> list[str]:
    """Remove crash leftovers older than STALE_SECONDS: temporary folders and links, and version
    folders no fit links to. Never raises (a store that cannot be cleaned still reads)."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(root)
    except OSError:
        return []
    linked = set()
    for name in names:
        if KEY.fullmatch(name) and os.path.islink(root / name):
            try:
                linked.add(os.readlink(root / name))
            except OSError:
                continue
    removed = []
    for name in names:
        leftover = name.startswith(TEMP_PREFIXES) or (VERSION.fullmatch(name) and name not in linked)
        if leftover and now - _newest_mtime(root / name) > STALE_SECONDS:
            remove_tree(root / name)
            removed.append(name)
    return removed


def _newest_mtime(path: Path) -> float:
    """The latest modification of a folder or of anything directly in it (a file being written
    updates its own time, not its folder's)."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for child in os.scandir(path):
                newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
        return newest
    except OSError:
        return time.time()  # vanishing as we look: someone is working on it


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)
