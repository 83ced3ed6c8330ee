"""Who may use the dashboard, asked once per session before any page is drawn.

Three ways, the first that is configured wins:
1. Streamlit's own login (st.login, OpenID Connect) when `.streamlit/secrets.toml` has an `[auth]`
   section; BHM_ALLOWED_EMAILS (comma-separated) then narrows it to those accounts.
2. A shared password from BHM_PASSWORD, compared in constant time.
3. Neither: open, as on a single user's machine (the server listens on 127.0.0.1 by default).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import time
from collections.abc import Mapping

import streamlit as st

from ui.session import state

PASSWORD_ENV = "BHM_PASSWORD"
ALLOWED_EMAILS_ENV = "BHM_ALLOWED_EMAILS"
FAILED_PASSWORD_DELAY = 1.0  # seconds; slows guessing down without bothering someone who mistyped
W_PASSWORD = "w.access_password"


def gate() -> bool:
    """True when this session may use the dashboard; else the login or password form is drawn
    (app.py asks before any page, and every page again, for a page run on its own)."""
    if granted():
        return True
    auth = _auth_section()
    if auth is not None:
        _login_form(auth)
    else:
        _password_form(os.environ[PASSWORD_ENV])
    return False


def granted() -> bool:
    """Whether this session may use the dashboard; draws nothing."""
    if _auth_section() is not None:
        user = st.user
        allowed = allowed_emails()
        return bool(user.get("is_logged_in")) and (not allowed or str(user.get("email") or "").lower() in allowed)
    return not os.environ.get(PASSWORD_ENV, "") or st.session_state.get(state.ACCESS) is True


def account_menu() -> None:
    """A logged-in user's way out, in the sidebar (nothing without login)."""
    if _auth_section() is not None and st.user.get("is_logged_in"):
        st.sidebar.button("Log out", icon=":material/logout:", on_click=st.logout, key="access.logout")


def password_matches(given: str, expected: str) -> bool:
    """Constant time whatever the inputs: both are hashed first, so not even the length leaks."""
    return hmac.compare_digest(_digest(given), _digest(expected))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def allowed_emails() -> set[str]:
    return {e.strip().lower() for e in os.environ.get(ALLOWED_EMAILS_ENV, "").split(",") if e.strip()}


def _auth_section() -> Mapping | None:
    try:
        section = st.secrets.get("auth") if "auth" in st.secrets else None
    except Exception:  # no secrets file, or one that does not parse: Streamlit logs it
        return None
    return section if isinstance(section, Mapping) and section else None


def _providers(auth: Mapping) -> list[str | None]:
    """None for the `[auth]` section's own provider, else the names of its `[auth.NAME]` tables."""
    named = [name for name, value in auth.items() if isinstance(value, Mapping)]
    return [None] if "client_id" in auth or not named else named


def _login_form(auth: Mapping) -> None:
    st.title("Sales forecasting")
    user = st.user
    if user.get("is_logged_in"):  # but not among the allowed accounts
        email = str(user.get("email") or "").lower()
        st.error(
            f"The account {email or '(without an e-mail address)'} may not use this dashboard: it is not "
            f"among the accounts the server allows ({ALLOWED_EMAILS_ENV}). Log out and use another account."
        )
        st.button("Log out", on_click=st.logout, key="access.logout_refused")
        return
    st.write("Log in to use the dashboard.")
    if importlib.util.find_spec("authlib") is None:
        st.error(
            "Login is configured ([auth] in .streamlit/secrets.toml) but the server lacks the Authlib "
            "package that Streamlit's login needs: install it with pip install 'Authlib>=1.3.2'."
        )
        return
    for provider in _providers(auth):
        st.button(
            f"Log in with {provider}" if provider else "Log in",
            type="primary",
            icon=":material/login:",
            on_click=st.login,
            args=() if provider is None else (provider,),
            key=f"access.login.{provider or 'default'}",
        )


def _password_form(expected: str) -> None:
    st.title("Sales forecasting")
    with st.form("access.password", border=True, width=420):
        given = st.text_input("Password", type="password", key=W_PASSWORD, help="Ask whoever runs the dashboard")
        sent = st.form_submit_button("Enter", type="primary", icon=":material/key:")
    if not sent:
        return
    if password_matches(given, expected):
        st.session_state[state.ACCESS] = True
        st.rerun()
    time.sleep(FAILED_PASSWORD_DELAY)
    st.error("Wrong password: the dashboard needs the password set on the server. Ask whoever runs it.")
