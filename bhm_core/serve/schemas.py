"""Request and response bodies of the HTTP service (pydantic), and their JSON helpers.

Bodies: `{"stores": [1, 2], "start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}` or `{"stores": [...],
"horizon": 14}`, optional `levels`, `samples`, `seed` and per store-day `covariates` (promo, open);
the density endpoint adds `bins` or `draws: true`. Responses: `{"fit": KEY, "units": ..., "rows":
[...]}` with rows holding the columns of the `forecast` command.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bhm_core.forecast import export

POINT_FIELDS = ("store", "date", "open", "mean", "median", "point", "source")


class Covariate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: int
    date: dt.date
    promo: int | None = Field(None, ge=0, le=1, description="1: a promo day; 0: none")
    open: int | None = Field(None, ge=0, le=1, description="1: open; 0: closed (forecast 0)")


class ForecastBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stores: list[int] = Field(..., min_length=1, description="store ids of the fit")
    start: dt.date | None = Field(None, description="first day (with end)")
    end: dt.date | None = Field(None, description="last day (with start)")
    horizon: int | None = Field(None, ge=1, le=export.MAX_AHEAD_DAYS, description="days after the data")
    levels: list[int] = Field(
        list(export.DEFAULT_LEVELS), min_length=1, max_length=10, description="central interval levels in percent"
    )
    samples: int = Field(
        export.DEFAULT_SAMPLES, ge=1, le=export.MAX_SAMPLES, description="predictive draws per store-day"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    covariates: list[Covariate] = Field([], max_length=100_000, description="known promo / open per store-day")

    @model_validator(mode="after")
    def _window(self):
        if self.horizon is None and (self.start is None or self.end is None):
            raise ValueError("give start and end, or horizon")
        if self.horizon is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either horizon or start and end, not both")
        return self


class DensityBody(ForecastBody):
    bins: int = Field(30, ge=2, le=500, description="histogram bins per store-day")
    draws: bool = Field(False, description="the raw draws instead of a histogram")


class Health(BaseModel):
    status: str
    fit: str
    compiled: bool = Field(description="every common request shape is compiled (until then some wait on a compile)")


class FitInfo(BaseModel):
    key: str
    label: str
    stores: list[int]
    first_date: str
    last_date: str
    created: str | None
    likelihood: str
    lineage: dict


class ForecastResponse(BaseModel):
    fit: str
    units: str
    levels: list[int]
    rows: list[dict]
    total: list[dict]


class DensityResponse(BaseModel):
    fit: str
    units: str
    rows: list[dict]


def records(columns: dict) -> list[dict]:
    """JSON-ready rows from columns (name -> array or list, one entry per row): dates as
    YYYY-MM-DD, numbers as Python numbers, NaN as null; a 2-D column gives each row a list."""
    lists = {name: _json_list(values) for name, values in columns.items()}
    return [dict(zip(lists, row)) for row in zip(*lists.values())]


def _json_list(values) -> list:
    if isinstance(values, list):
        return values
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.datetime64):
        return np.datetime_as_string(values.astype("datetime64[D]")).tolist()
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        return [_nulls(row) for row in values] if values.ndim > 1 else _nulls(values)
    return values.tolist()


def _nulls(row: np.ndarray) -> list:
    return [x if math.isfinite(x) else None for x in row.tolist()]


def histograms(samples: np.ndarray, bins: int) -> tuple[list, list]:
    """Per row of draws: bin edges and densities (integrating to 1) of a histogram."""
    edges, densities = [], []
    for row in samples:
        lo, hi = float(row.min()), float(row.max())
        counts, e = np.histogram(row, bins=bins, range=(lo, hi if hi > lo else lo + 1.0), density=True)
        edges.append(e.tolist())
        densities.append(counts.tolist())
    return edges, densities
