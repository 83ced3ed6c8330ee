"""Work running in a background thread, so the page stays live and the work can be cancelled.

No Streamlit here: the thread only calls the library. The session keeps the job in session state
(ui.session.lifecycle) and a page polls it (ui.views.job_progress, a fragment with run_every); the
Cancel button sets an Event that the engine's should_stop callback reads between chunks of steps.

`FitJob` runs one fit_or_load; `TaskJob` runs any library call that reports progress and can be
stopped (a backtest, a cold-start trial) and puts its value into a `ResultCache` shared by the
sessions of the process, under the job's key.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from bhm_core.data.cube import SalesCube
from bhm_core.model.config import FitConfig, Priors

if TYPE_CHECKING:  # the artifacts module brings JAX: imported when a fit runs (ui.session.warmup)
    from bhm_core.artifacts import CachedFit, FitStore

log = logging.getLogger(__name__)
EXPECTED = (ValueError, NotImplementedError)  # errors whose message is for the user (BhmError too)


class BackgroundJob:
    """One call in a daemon thread. Read-only for the page except cancel(); subclasses define
    _work(), whose return value becomes `outcome`."""

    def __init__(self, *, key: str = "", label: str = "", source=None, total_steps: int = 1):
        self.key, self.label, self.source = key, label, source
        self.total_steps = max(int(total_steps), 1)
        self.phase = ""  # what the work is doing now, for the page
        self._then = ""  # what it does after the current stage's last step
        self._after_steps = ""  # a named phase once the steps are done (drawing forecasts)
        self.trace: list[tuple[int, float]] = []  # (step, loss) after every chunk of steps
        self.outcome = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.seconds: float | None = None
        self._stop, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"bhm-{type(self).__name__}-{id(self):x}")

    def start(self):
        self._thread.start()
        return self

    def _work(self):
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self.outcome = self._work()
        except BaseException as exc:  # handed to the page, which shows the message
            if not isinstance(exc, EXPECTED):
                log.exception("background job %s failed", self.label)
            self.error = exc
        finally:
            self.seconds = time.monotonic() - self.started
            self._done.set()

    def progress(self, step, loss) -> None:
        """on_progress of the library's fits: (step, loss) after every chunk of steps."""
        self.trace.append((int(step), float(loss)))
        if self._then and step >= self.total_steps:
            self.phase = self._then  # the stage's fit is done; what follows reports no steps

    def begin(self, phase: str, total_steps: int = 1, then: str = "") -> None:
        """A new stage of the work (its own steps count from 0); `then`: what the page says once
        its last step is done."""
        self.phase, self.total_steps, self.trace = phase, max(int(total_steps), 1), []
        self._then = then

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
    def compiling(self) -> bool:
        """Whether the work is building (or waiting for) a compiled program right now."""
        programs = sys.modules.get("bhm_core.inference.programs")  # loaded by the time anything compiles
        return programs is not None and self._thread.ident is not None and programs.compiling(self._thread.ident)

    def stage(self) -> str:
        """The named phase the progress panel shows."""
        if self.cancelling:
            return "Cancelling"
        if self._after_steps:
            return self._after_steps
        if self.step == 0:
            return "Compiling" if self.compiling else "Preparing"
        if self.step < self.total_steps:
            return "Fitting"
        return self._then or "Finishing"

    @property
    def elapsed(self) -> float:
        return self.seconds if self.seconds is not None else time.monotonic() - self.started


class FitJob(BackgroundJob):
    """One fit_or_load call: a new fit is saved, an existing one loaded."""

    def __init__(
        self,
        store: FitStore,
        cube: SalesCube,
        config: FitConfig,
        priors: Priors,
        *,
        key: str = "",
        label: str = "",
        source=None,
        after: Callable | None = None,
    ):
        super().__init__(key=key, label=label, source=source, total_steps=config.steps)
        self._then = "Saving"
        self.config, self.priors = config, priors
        self.n_stores = cube.n_stores
        self._store, self._cube, self._after = store, cube, after

    def _work(self) -> CachedFit:
        from bhm_core import artifacts

        try:
            out = artifacts.fit_or_load(
                self._store,
                self._cube,
                self.config,
                self.priors,
                label=self.label,
                on_progress=self.progress,
                should_stop=self._stop.is_set,
                source=self.source,
            )
            if self._after is not None and not out.result.meta.get("cancelled") and not self.cancelling:
                self._after_steps = "Drawing forecasts"
                try:
                    self._after(out.result, self._cube)
                except Exception:  # the fit is made and saved; its forecasts are drawn again on the page
                    log.exception("drawing the forecasts ahead failed")
            return out
        finally:
            self._cube = self._after = None  # the thread's references: the cube is the cache's


class TaskJob(BackgroundJob):
    """work(job) in a thread; work reports through job.progress / job.phase and stops when
    job.should_stop() is True. On success the value is put into `cache` under the job's key."""

    def __init__(
        self,
        work: Callable[[TaskJob], object],
        cache: ResultCache,
        *,
        key: str,
        label: str = "",
        source=None,
        total_steps: int = 1,
    ):
        super().__init__(key=key, label=label, source=source, total_steps=total_steps)
        self._work_fn, self._cache = work, cache

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def _work(self):
        value = self._work_fn(self)
        self._cache.put(self.key, value)
        self._work_fn = None
        return value


class ResultCache:
    """A small thread-safe LRU map from a content key to a result (an Evaluation)."""

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: str, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
