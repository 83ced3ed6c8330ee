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
import pandas as pd
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
    samples: int = Field(500, ge=1, le=export.MAX_SAMPLES, description="predictive draws per store-day")
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


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: dates as YYYY-MM-DD, numpy scalars as Python numbers, NaN as null."""
    out = frame.copy()
    if "date" in out:
        out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    rows = out.to_dict(orient="records")
    for row in rows:
        for k, v in row.items():
            if isinstance(v, (np.floating, float)):
                row[k] = None if not math.isfinite(float(v)) else float(v)
            elif isinstance(v, np.integer):
                row[k] = int(v)
            elif isinstance(v, np.bool_):
                row[k] = bool(v)
    return rows


def histograms(samples: np.ndarray, bins: int) -> tuple[list, list]:
    """Per row of draws: bin edges and densities (integrating to 1) of a histogram."""
    edges, densities = [], []
    for row in samples:
        lo, hi = float(row.min()), float(row.max())
        counts, e = np.histogram(row, bins=bins, range=(lo, hi if hi > lo else lo + 1.0), density=True)
        edges.append(e.tolist())
        densities.append(counts.tolist())
    return edges, densities
