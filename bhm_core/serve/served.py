"""The fit a server answers with, and how it is swapped for a new one while requests run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bhm_core.data.future import FutureCalendar
from bhm_core.forecast.export import DEFAULT_SAMPLES
from bhm_core.forecast.sampling import CHUNK_STORES, compile_programs
from bhm_core.reopen import Reopened

log = logging.getLogger(__name__)
POINTER_POLL_SECONDS = 2.0
WARM_DAYS = 64  # windows up to this long (any number of stores, the default draws) never compile


@dataclass(frozen=True, eq=False)
class ServedFit:
    key: str
    result: object
    cube: object
    record: dict
    calendar: FutureCalendar | None
    units: str = "sales per store and day"
    compiled: threading.Event = field(default_factory=threading.Event)  # set once `warm()` has run in full

    @classmethod
    def of(cls, opened: Reopened) -> ServedFit:
        kind = ((opened.record.get("lineage") or {}).get("source") or {}).get("kind")
        units = "EUR per store and day" if kind in ("demo", "kaggle-dir") else "sales per store and day"
        return cls(opened.key, opened.result, opened.cube, opened.record, opened.calendar, units)

    def info(self) -> dict:
        meta = self.record.get("meta") or {}
        return {
            "key": self.key,
            "label": self.record.get("label", ""),
            "stores": [int(s) for s in self.result.store_ids],
            "first_date": str(self.cube.dates[0]),
            "last_date": str(self.cube.dates[-1]),
            "created": self.record.get("created"),
            "likelihood": self.result.config.likelihood,
            "lineage": {
                "parent": self.record.get("parent"),
                "data_fingerprint": self.result.data_fingerprint,
                "steps": meta.get("steps"),
                **(self.record.get("lineage") or {}),
            },
        }

    def warm(self, chunk_stores: int = CHUNK_STORES) -> None:
        """Compile every program a request of the default draws, a window of up to WARM_DAYS days
        and chunks of up to `chunk_stores` stores uses: no such request waits on a compile."""
        began = time.perf_counter()
        shapes = compile_programs(self.result, self.cube, DEFAULT_SAMPLES, WARM_DAYS, chunk_stores)
        log.info("fit %s: compiled %d request shapes in %.1f s", self.key, shapes, time.perf_counter() - began)
        if chunk_stores >= CHUNK_STORES:
            self.compiled.set()


class Holder:
    """The current ServedFit. `reload()` opens the fit again (e.g. the `current` pointer moved),
    warms it and swaps it in whole: a request that already took the old one finishes on it.

    At start the one-store programs are compiled before the first request, the others (more
    stores per request) while requests are answered, so the service is up in seconds."""

    def __init__(self, open_fit: Callable[[], ServedFit]):
        self._open, self._lock = open_fit, threading.Lock()
        self._current = open_fit()
        self._current.warm(chunk_stores=1)
        threading.Thread(target=self._current.warm, name="warm", daemon=True).start()
        self._log(self._current)

    def __call__(self) -> ServedFit:
        return self._current

    def reload(self) -> bool:
        """True when a new fit was swapped in; on any failure the old one stays and it is logged."""
        with self._lock:
            try:
                fresh = self._open()
                fresh.warm()
            except Exception:  # a broken new fit must never take the service down
                log.exception("reloading the fit failed; still serving %s", self._current.key)
                return False
            changed = fresh.key != self._current.key
            self._current = fresh
            self._log(fresh)
            return changed

    def reload_in_background(self) -> threading.Thread:
        """`reload` on its own thread: what a signal handler calls, so requests keep being answered."""
        thread = threading.Thread(target=self.reload, name="reload", daemon=True)
        thread.start()
        return thread

    def watch(self, token: Callable[[], object], every: float = POINTER_POLL_SECONDS) -> threading.Thread:
        """Reload whenever `token()` (e.g. the key the fits folder's `current` pointer names)
        changes: a promotion by `retrain` reaches a running service without a signal."""

        def poll() -> None:
            last = token()
            while True:
                time.sleep(every)
                try:
                    now = token()
                except Exception:  # an unreadable folder for a moment: ask again next time
                    log.exception("reading what to serve failed")
                    continue
                if now != last:
                    last = now
                    self.reload()

        thread = threading.Thread(target=poll, name="watch", daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _log(served: ServedFit) -> None:
        log.info(
            "serving fit %s (%d stores, data to %s)",
            served.key,
            len(served.result.store_ids),
            np.datetime_as_string(served.cube.dates[-1]),
        )
