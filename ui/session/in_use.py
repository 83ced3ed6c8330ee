"""Which saved fits the sessions of this server process have in use: their current fit.

One fit store serves every session, and a fit that another session shows must not vanish under
it, so deleting a fit asks here first. Each session holds at most one claim, through a token kept
in its own session state: when Streamlit drops a closed session, the token is garbage and the
claim goes with it, so a tab closed without a word never pins a fit for good. Nothing heavy is
imported: the sidebar refreshes the claim on every run, the Data page's included.
"""

from __future__ import annotations

import threading
import weakref

import streamlit as st

from bhm_core import paths
from ui.session import state


class Token:
    """The object a session keeps (state.FIT_CLAIM) so that its claim lives as long as it does."""

    __slots__ = ("__weakref__",)


class Registry:
    """Thread-safe map of live tokens to the (fit root, key) each holds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._claims: dict[int, tuple[weakref.ref, tuple[str, str]]] = {}

    def hold(self, token: Token, root: str, key: str | None) -> None:
        """The token now holds `key` under `root` (None: nothing), in place of what it held."""
        ident = id(token)
        with self._lock:
            if key is None:
                self._claims.pop(ident, None)
                return
            held = self._claims.get(ident)
            ref = held[0] if held is not None and held[0]() is token else weakref.ref(token, self._forget(ident))
            self._claims[ident] = (ref, (str(root), key))

    def _forget(self, ident: int):
        def forget(ref) -> None:
            with self._lock:
                held = self._claims.get(ident)
                if held is not None and held[0] is ref:  # not a newer token that reuses the id
                    del self._claims[ident]

        return forget

    def holders(self, root: str, key: str, *, besides: Token | None = None) -> int:
        """How many live tokens other than `besides` hold `key` under `root`."""
        with self._lock:
            return sum(
                1
                for ref, held in self._claims.values()
                if held == (str(root), key) and ref() is not None and ref() is not besides
            )


REGISTRY = Registry()


def token() -> Token:
    """This session's token (made on first use)."""
    if state.FIT_CLAIM not in st.session_state:
        st.session_state[state.FIT_CLAIM] = Token()
    return st.session_state[state.FIT_CLAIM]


def sync() -> None:
    """Claim this session's current fit if it is saved, else claim nothing."""
    fit = st.session_state.get(state.FIT)
    key = fit.key if fit is not None and fit.saved else None
    REGISTRY.hold(token(), str(paths.fits_root()), key)


def used_elsewhere(key: str) -> bool:
    """Whether another live session has saved fit `key` (in this store) as its current fit."""
    return REGISTRY.holders(str(paths.fits_root()), key, besides=token()) > 0
