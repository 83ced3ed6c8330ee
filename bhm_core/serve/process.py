"""How `python -m bhm_core serve` runs: one process, or several uvicorn workers.

Served as `--fit current`, every process follows the fits folder's `current` pointer: when
`retrain` promotes a fit, the next requests get it. One process answers through a `Holder`; SIGHUP
opens the fit again and swaps it in while requests
in flight finish on the old one. Several workers (`--workers N`, one per core: a request's work
holds the interpreter lock, so threads of one process share one core) each open and warm the fit
themselves; on SIGHUP uvicorn replaces them one at a time, a new worker taking requests before the
old one retires, and keeps the old one when the new one cannot start (a broken fit never takes the
service down). The workers read their settings from one environment variable, as uvicorn starts
them by import path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from dataclasses import dataclass

from fastapi import FastAPI

from bhm_core.serve.app import Limits, create_app
from bhm_core.serve.served import Holder, ServedFit

SETTINGS_VARIABLE = "BHM_SERVE_SETTINGS"
WORKER_START_SECONDS = 600  # a new worker opens, checks and compiles the fit before it answers


@dataclass(frozen=True)
class Served:
    """What to serve: a fit (key, folder or pointer) and where its data are, and the limits."""

    fit: str
    fits_root: str
    data_dir: str | None = None
    calendar: str | None = None
    max_bytes: int | None = None
    max_store_days: int = Limits.max_store_days
    max_draws: int = Limits.max_draws

    def open(self) -> ServedFit:
        from bhm_core.inference.programs import enable_compilation_cache
        from bhm_core.reopen import reopen

        enable_compilation_cache()
        opened = reopen(
            self.fit, self.fits_root, data_dir=self.data_dir, calendar=self.calendar, max_bytes=self.max_bytes
        )
        return ServedFit.of(opened)

    def holder(self) -> Holder:
        """The fit, opened and warmed; when it was named `current`, followed to whatever fit the
        fits folder's pointer names next."""
        from bhm_core.artifacts import FitStore
        from bhm_core.reopen import CURRENT

        holder = Holder(self.open)
        if self.fit == CURRENT:
            holder.watch(FitStore(self.fits_root).current_key)
        return holder

    def app(self, holder: Holder) -> FastAPI:
        return create_app(holder, Limits(max_store_days=self.max_store_days, max_draws=self.max_draws))


def app_from_environment() -> FastAPI:
    """The app of one worker (uvicorn's factory): the settings `run` left in the environment."""
    served = Served(**json.loads(os.environ[SETTINGS_VARIABLE]))
    return served.app(served.holder())


def run(served: Served, host: str, port: int, workers: int, announce) -> None:
    """Serve until stopped; `announce(key)` is told the fit once it is open (one process) or the
    workers are starting (several)."""
    import uvicorn

    if workers == 1:
        holder = served.holder()
        signal.signal(signal.SIGHUP, lambda *_: holder.reload_in_background())
        announce(holder().key)
        uvicorn.run(served.app(holder), host=host, port=port, log_level="warning")
        return
    # Opened once here too, so that a bad fit is one error before any worker starts.
    announce(served.open().key)
    os.environ[SETTINGS_VARIABLE] = json.dumps(dataclasses.asdict(served))
    uvicorn.run(
        "bhm_core.serve.process:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_START_SECONDS,
        log_level="warning",
    )
