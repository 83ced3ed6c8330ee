"""A fit running in a background thread, so the page stays live and the fit can be cancelled.

No Streamlit here: the thread only calls the library. The page keeps the job in session state and
polls it (a fragment with run_every); the Cancel button sets an Event that the engine's
should_stop callback reads between chunks of steps.
"""

from __future__ import annotations

import logging
import threading
import time

from bhm_core import artifacts
from bhm_core.artifacts import CachedFit, FitStore
from bhm_core.config import FitConfig, Priors
from bhm_core.cube import SalesCube

log = logging.getLogger(__name__)


class FitJob:
    """One fit_or_load call in a daemon thread. Read-only for the page except cancel()."""

    def __init__(self, store: FitStore, cube: SalesCube, config: FitConfig, priors: Priors, *,
                 key: str = "", label: str = "", source=None):
        self.config, self.priors, self.key, self.source = config, priors, key, source
        self.label = label
        self.n_stores = cube.n_stores
        self.trace: list[tuple[int, float]] = []   # (step, loss) after every chunk of steps
        self.outcome: CachedFit | None = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.seconds: float | None = None
        self._stop, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(store, cube), daemon=True,
                                        name=f"bhm-fit-{id(self):x}")

    def start(self) -> "FitJob":
        self._thread.start()
        return self

    def _run(self, store: FitStore, cube: SalesCube) -> None:
        try:
            self.outcome = artifacts.fit_or_load(
                store, cube, self.config, self.priors, label=self.label,
                on_progress=lambda step, loss: self.trace.append((int(step), float(loss))),
                should_stop=self._stop.is_set)
        except BaseException as exc:  # handed to the page, which shows the message
            if not isinstance(exc, (ValueError, NotImplementedError)):
                log.exception("fit failed")
            self.error = exc
        finally:
            self.seconds = time.monotonic() - self.started
            self._done.set()

    def cancel(self) -> None:
        self._stop.set()

    @property
    def cancelling(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def step(self) -> int:
        return self.trace[-1][0] if self.trace else 0

    @property
    def elapsed(self) -> float:
        return self.seconds if self.seconds is not None else time.monotonic() - self.started
