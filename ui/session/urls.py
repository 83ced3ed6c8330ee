"""The view in the address bar: the data source, the picked stores and the current fit live in the
URL's query (st.query_params), so a reload restores them and a link shows a colleague the same view.

`restore` (app.py, before the page) reads the URL once per session; `publish` (after the page)
writes the state back. A source goes into the URL as a token, never as a path: the built-in demo
spells its settings ("demo-200-942-0"), any other source is a hash of its settings that this
server remembers (in memory and in a small file under the data root), so a link can only point the
server at data it has loaded before, not at an arbitrary folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import asdict

import streamlit as st

from bhm_core import paths
from bhm_core.data.sources import CsvSource, DemoSource, KaggleDirSource
from bhm_core.errors import BhmError
from ui.session import state

SOURCE, STORES, FIT = "source", "stores", "fit"
RESTORED = "bhm.url_restored"  # set once a session has read its URL
KINDS = {"kaggle-dir": KaggleDirSource, "csv": CsvSource}
_KNOWN: dict = {}  # token -> source, for sources that cannot be spelled in a URL
_LOCK = threading.Lock()


def _registry_file():
    return paths.data_root() / "cache" / "sources.json"


def token(source) -> str:
    """A short, URL-safe name of the source."""
    if isinstance(source, DemoSource):
        return f"demo-{source.n_stores}-{source.n_days}-{source.seed}"
    values = {k: [list(pair) for pair in v] if k == "columns" else v for k, v in asdict(source).items()}
    fields = {"kind": source.kind, **values}
    name = f"{source.kind}-{hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]}"
    with _LOCK:
        if name not in _KNOWN:
            _KNOWN[name] = source
            _remember(name, fields)
    return name


def _remember(name: str, fields: dict) -> None:
    path = _registry_file()
    try:
        known = json.loads(path.read_text()) if path.is_file() else {}
        known[name] = fields
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        tmp.replace(path)
    except (OSError, ValueError):  # the link then works until the server restarts
        pass


def from_token(name: str):
    """The source a token names, or None when this server does not know it."""
    match = re.fullmatch(r"demo-(\d{1,6})-(\d{1,6})-(\d{1,9})", name or "")
    if match:
        try:
            return DemoSource(*(int(g) for g in match.groups()))
        except (BhmError, ValueError, TypeError):
            return None
    with _LOCK:
        if name in _KNOWN:
            return _KNOWN[name]
    try:
        fields = json.loads(_registry_file().read_text()).get(name)
    except (OSError, ValueError):
        return None
    if not fields or fields.get("kind") not in KINDS:
        return None
    kind = KINDS[fields.pop("kind")]
    if "columns" in fields:
        fields["columns"] = tuple(tuple(pair) for pair in fields["columns"])
    try:
        return kind(**fields)
    except (TypeError, ValueError):
        return None


def format_ids(ids) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1-3,7,9-10': runs of consecutive ids as ranges."""
    ids = sorted({int(i) for i in ids})
    runs, start = [], None
    for i, current in enumerate(ids):
        if start is None:
            start = current
        if i + 1 == len(ids) or ids[i + 1] != current + 1:
            runs.append(str(start) if start == current else f"{start}-{current}")
            start = None
    return ",".join(runs)


def parse_ids(text: str, limit: int = 100_000) -> list[int]:
    """'1-3,7' -> [1, 2, 3, 7]; anything malformed is skipped (a hand-edited URL never crashes)."""
    out: list[int] = []
    for part in (text or "").split(","):
        match = re.fullmatch(r"\s*(\d{1,9})(?:-(\d{1,9}))?\s*", part)
        if not match:
            continue
        first, last = int(match[1]), int(match[2] or match[1])
        if first <= last and last - first < limit and len(out) < limit:
            out.extend(range(first, last + 1))
    return list(dict.fromkeys(out))


def restore() -> None:
    """Once per session: the source, picks and fit named in the URL become the session's."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    query = st.query_params
    name = query.get(SOURCE)
    if name:
        source = from_token(name)
        if source is None:
            st.session_state[state.URL_NOTICE] = (
                "The link names data this server does not know (a link to an upload or a folder works on "
                "the server it was made on); the built-in demo is shown instead."
            )
        elif source != state.current_source():
            from ui.session import loaders

            try:
                loaders.load_cube(source)
            except BhmError as exc:
                st.session_state[state.URL_NOTICE] = f"The data of the link cannot be loaded: {exc}"
            else:
                state.set_source(source)
    if query.get(STORES):
        state.set_selected_stores(parse_ids(query[STORES]))
    key = query.get(FIT)
    if key and re.fullmatch(r"[0-9a-f]{8,128}", key):
        from ui.session import fits

        fits.reopen(key, quiet=True)


def publish() -> None:
    """Write the session's source, picks and current fit into the URL (only what changed)."""
    wanted = {SOURCE: token(state.current_source())}
    picks = state.selected_stores()
    if picks:
        wanted[STORES] = format_ids(picks)
    fit = st.session_state.get(state.FIT)
    if fit is not None and fit.saved:
        wanted[FIT] = fit.key
    query = st.query_params
    for name in (SOURCE, STORES, FIT):
        if name not in wanted and name in query:
            del query[name]
        elif name in wanted and query.get(name) != wanted[name]:
            query[name] = wanted[name]
