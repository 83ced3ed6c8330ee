"""The fit a server answers with, and how it is swapped for a new one while requests run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bhm_core.data.future import FutureCalendar
from bhm_core.forecast import export
from bhm_core.reopen import Reopened

log = logging.getLogger(__name__)
WARM_DAYS = 42  # the request the service is warmed with: one store, six weeks


@dataclass(frozen=True, eq=False)
class ServedFit:
    key: str
    result: object
    cube: object
    record: dict
    calendar: FutureCalendar | None
    units: str = "sales per store and day"

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

    def warm(self) -> None:
        """Compile the programs a first request would (one store, six weeks ahead) before serving."""
        first, last = export.window(self.cube, horizon=WARM_DAYS)
        request = export.Request((int(self.result.store_ids[0]),), first, last, export.DEFAULT_LEVELS, 500, 0)
        export.tables(self.result, self.cube, request)


class Holder:
    """The current ServedFit. `reload()` opens the fit again (e.g. the `current` pointer moved)
    and swaps it in whole: a request that already took the old one finishes on it."""

    def __init__(self, open_fit: Callable[[], ServedFit]):
        self._open, self._lock = open_fit, threading.Lock()
        self._current = self._ready(open_fit())

    def __call__(self) -> ServedFit:
        return self._current

    def reload(self) -> bool:
        """True when a new fit was swapped in; on any failure the old one stays and it is logged."""
        with self._lock:
            try:
                fresh = self._ready(self._open())
            except Exception:  # a broken new fit must never take the service down
                log.exception("reloading the fit failed; still serving %s", self._current.key)
                return False
            changed = fresh.key != self._current.key
            self._current = fresh
            return changed

    @staticmethod
    def _ready(served: ServedFit) -> ServedFit:
        served.warm()
        log.info(
            "serving fit %s (%d stores, data to %s)",
            served.key,
            len(served.result.store_ids),
            np.datetime_as_string(served.cube.dates[-1]),
        )
        return served
