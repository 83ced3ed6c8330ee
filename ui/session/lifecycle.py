"""One lifecycle for work that runs in the background: a fit, a backtest, a cold-start trial.

A session runs at most one job of each kind. `start` puts it into session state, a page polls it
(ui.views.job_progress), and `collect` turns a finished job into a notice, and into a result where
the kind keeps one (the current fit; an evaluation is already in its cache). What differs between
kinds is small and given as two functions: what a success means, and which failures need more than
the usual message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from bhm_core.errors import BhmError
from ui.session import state
from ui.session.jobs import BackgroundJob

USER_ERRORS = (BhmError, NotImplementedError)  # their message is for the user as it is


@dataclass(frozen=True)
class Notice:
    kind: str  # success, info, warning, error
    text: str


def _no_special_failure(job: BackgroundJob, error: BaseException) -> Notice | None:
    return None


@dataclass(frozen=True, eq=False)
class Lifecycle:
    """Where one kind of job and its last notice live, and how its outcome is collected."""

    name: str  # prefix of its progress panel's widget keys ("fit" -> "fit.cancel")
    what: str  # the work, as messages name it ("fit", "backtest")
    job_key: str
    notice_key: str
    succeeded: Callable[[BackgroundJob], Notice]  # may also make the result current
    failed: Callable[[BackgroundJob, BaseException], Notice | None] = _no_special_failure

    def job(self) -> BackgroundJob | None:
        return st.session_state.get(self.job_key)

    def start(self, make_job: Callable[[], BackgroundJob]) -> bool:
        """Start the job make_job() builds, unless one of this kind runs; False when one did."""
        if self.job() is not None:
            return False  # one at a time per kind and session
        st.session_state[self.job_key] = make_job().start()
        self.clear_notice()
        return True

    def cancel(self) -> None:
        running = self.job()
        if running is not None:
            running.cancel()

    def notice(self) -> Notice | None:
        return st.session_state.get(self.notice_key)

    def notify(self, kind: str, text: str) -> None:
        st.session_state[self.notice_key] = Notice(kind, text)

    def clear_notice(self) -> None:
        st.session_state.pop(self.notice_key, None)

    def collect(self) -> None:
        """A finished job leaves the session and leaves its notice (and result) behind."""
        done = self.job()
        if done is None or not done.done:
            return
        del st.session_state[self.job_key]
        if done.source != state.current_source():
            return  # the data changed while it ran (state.drop_fit cancelled it)
        st.session_state[self.notice_key] = self.outcome(done)

    def outcome(self, done: BackgroundJob) -> Notice:
        error = done.error
        if error is None:
            return self.succeeded(done)
        special = self.failed(done, error)
        if special is not None:
            return special
        if isinstance(error, USER_ERRORS):
            return Notice("error", str(error) or type(error).__name__)
        text = f"The {self.what} failed unexpectedly ({type(error).__name__}: {error})."
        return Notice("error", text + " The details are in the server log.")
