"""The HTTP prediction service: FastAPI over one saved fit, started by `python -m bhm_core serve`.

The fit, its data and its compiled programs are loaded and warmed once at start-up (`ServedFit`).
Every forecast endpoint answers with the rows the `forecast` command writes for the same request
(bhm_core.forecast.export), so the two never disagree. A request takes the fit current when it
arrives: a reload (SIGHUP, or a new `current` pointer) swaps the fit for later requests while
requests in flight finish on the old one.

Errors are answers, never tracebacks: a body that does not validate is a 422 naming the field; an
unknown store a 404; dates outside the allowed range a 422 with the range; a request larger than
the configured limits a 413 with the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bhm_core.data.future import FutureCalendar
from bhm_core.errors import BhmError, DataError
from bhm_core.forecast import export
from bhm_core.forecast.sampling import Scenario
from bhm_core.serve import schemas
from bhm_core.serve.served import ServedFit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (a 413 names the limit it passed)."""

    max_store_days: int = 20_000
    max_draws: int = 20_000_000  # store-days x samples: the draws one request holds in memory
    max_samples: int = export.MAX_SAMPLES


class RequestTooLarge(BhmError):
    pass


class UnknownStore(BhmError):
    pass


def create_app(current: Callable[[], ServedFit], limits: Limits = Limits()) -> FastAPI:
    """The app; `current()` returns the fit to answer with (read once per request)."""
    app = FastAPI(
        title="Hierarchical sales forecasts",
        version="1",
        description="Forecasts of a fitted Bayesian hierarchical sales model: points, intervals and "
        "predictive densities per store and day, and the daily total over the stores.",
    )
    _error_handlers(app)

    @app.get("/health", response_model=schemas.Health)
    def health():
        served = current()
        return {"status": "ok", "fit": served.key, "compiled": served.compiled.is_set()}

    @app.get("/v1/fit", response_model=schemas.FitInfo)
    def fit_info():
        return current().info()

    @app.post("/v1/forecast/point", response_model=schemas.ForecastResponse)
    def point(body: schemas.ForecastBody):
        return _answer(current(), body, limits, schemas.POINT_FIELDS)

    @app.post("/v1/forecast/interval", response_model=schemas.ForecastResponse)
    def interval(body: schemas.ForecastBody):
        return _answer(current(), body, limits, None)

    @app.post("/v1/forecast/density", response_model=schemas.DensityResponse)
    def density(body: schemas.DensityBody):
        return _density(current(), body, limits)

    return app


def _error_handlers(app: FastAPI) -> None:
    def reply(status: int, text: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": " ".join(text.split())})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return reply(422, f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(RequestTooLarge)
    async def too_large(request: Request, exc: RequestTooLarge):
        return reply(413, str(exc))

    @app.exception_handler(UnknownStore)
    async def unknown(request: Request, exc: UnknownStore):
        return reply(404, str(exc))

    @app.exception_handler(BhmError)
    async def bad(request: Request, exc: BhmError):
        return reply(422, str(exc))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        log.exception("forecast request failed")
        return reply(500, f"the server failed to answer ({type(exc).__name__}); the details are in its log")


def request_of(served: ServedFit, body: schemas.ForecastBody, limits: Limits) -> tuple[export.Request, Scenario]:
    """The export request and scenario a body asks for, checked against the fit and the limits."""
    stores = tuple(dict.fromkeys(int(s) for s in body.stores))
    unknown = sorted(set(stores) - set(served.result.store_ids.tolist()))
    if unknown:
        raise UnknownStore(
            f"store(s) {unknown[:10]} are not in fit {served.key}; it has {len(served.result.store_ids)} "
            f"stores ({served.result.store_ids[0]}..{served.result.store_ids[-1]})"
        )
    first, last = export.window(served.cube, body.start, body.end, body.horizon)
    request = export.Request(stores, first, last, export.check_levels(body.levels), body.samples, body.seed)
    store_days = len(stores) * request.n_days
    if store_days > limits.max_store_days:
        raise RequestTooLarge(f"{store_days:,} store-days asked; the limit is {limits.max_store_days:,} per request")
    if body.samples > limits.max_samples or store_days * body.samples > limits.max_draws:
        raise RequestTooLarge(
            f"{store_days:,} store-days x {body.samples:,} samples asked; the limit is "
            f"{limits.max_draws:,} draws and {limits.max_samples:,} samples per request"
        )
    return request, Scenario(calendar=_plan(body.covariates, served.calendar))


def _plan(covariates: list, calendar: FutureCalendar | None) -> FutureCalendar | None:
    """The request's own store-day covariates over the fit's calendar ahead."""
    if not covariates:
        return calendar
    import pandas as pd

    from bhm_core.data import future

    frame = pd.DataFrame(
        [
            {
                "Store": c.store,
                "Date": np.datetime64(c.date, "D"),
                "promo": future.UNKNOWN if c.promo is None else c.promo,
                "open": future.UNKNOWN if c.open is None else c.open,
            }
            for c in covariates
        ]
    )
    if frame.duplicated(["Store", "Date"]).any():
        raise DataError("covariates: a store and date appear twice")
    return future.from_frame(frame, "calendar").over(calendar)


def _answer(served: ServedFit, body: schemas.ForecastBody, limits: Limits, fields) -> dict:
    request, scenario = request_of(served, body, limits)
    total, rows = export.Total(request), []
    for part in export.parts(served.result, served.cube, request, scenario):
        total.add(part)
        rows.extend(schemas.records(_only(part.columns, fields)))
    return {
        "fit": served.key,
        "units": served.units,
        "levels": list(request.levels),
        "rows": rows,
        "total": schemas.records(_only(total.columns(), fields)),
    }


def _only(columns: dict, fields) -> dict:
    return columns if fields is None else {k: v for k, v in columns.items() if k in fields}


def _density(served: ServedFit, body: schemas.DensityBody, limits: Limits) -> dict:
    request, scenario = request_of(served, body, limits)
    rows = []
    for part in export.parts(served.result, served.cube, request, scenario):
        out = _only(part.columns, ("store", "date", "open", "source"))
        # (n_samples, stores, days) -> one row of draws per store-day, in the rows' order
        samples = part.draws.samples.transpose(1, 2, 0).reshape(-1, request.n_samples)
        if body.draws:
            out["draws"] = samples
        else:
            out["edges"], out["density"] = schemas.histograms(samples, body.bins)
        rows.extend(schemas.records(out))
    return {"fit": served.key, "units": served.units, "rows": rows}
