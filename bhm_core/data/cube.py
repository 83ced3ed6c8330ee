"""The store x day cube, indexed by calendar date.

Each row of the sales table lands at (store position, days since the first date), never at "the
n-th row of its store": a store with a gap keeps its later days on their real dates. Cells with no
row and closed days are not observations; neither are open days with zero sales (see README: on
Rossmann those 54 rows also have 0-5 customers, i.e. recording glitches, and Kaggle's metric ignores
them), nor open days whose sales are blank (future rows that only carry the promo calendar).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from bhm_core.data.calendar import MONTH_NAMES, SEASON_WEEKS, day_of_month, month_of, week_of_year, weekday_of, year_of
from bhm_core.data.covariates import Covariates, Design
from bhm_core.data.encoders import CLOSURE_WINDOW_DAYS, closure_distances
from bhm_core.data.features import FeatureSpec, encode
from bhm_core.errors import DataError

MISSING, OPEN, CLOSED = 0, 1, 2


@dataclass(frozen=True, eq=False)
class SalesCube:
    store_ids: np.ndarray  # (S,) int64, ascending
    dates: np.ndarray  # (T,) datetime64[D], consecutive days
    sales: np.ndarray  # (S, T) float32, 0 where not observed
    observed: np.ndarray  # (S, T) bool
    status: np.ndarray  # (S, T) int8: MISSING, OPEN or CLOSED
    covariates: Covariates
    design: Design
    stores: pd.DataFrame  # store attributes, one row per store in store_ids order
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    label: str = ""

    @property
    def n_stores(self) -> int:
        return len(self.store_ids)

    @property
    def n_days(self) -> int:
        return len(self.dates)

    @property
    def feature_names(self) -> tuple:
        return self.design.names

    @property
    def fingerprint(self) -> str:
        """Content hash of everything a fit sees; equal data gives an equal key."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            h = hashlib.blake2b(digest_size=16)
            for array in (
                self.store_ids,
                self.dates.astype(np.int64),
                self.sales,
                self.observed,
                self.design.index,
                self.design.value,
            ):
                h.update(np.ascontiguousarray(array).tobytes())
            h.update(repr(self.design.names).encode())
            cached = h.hexdigest()
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def store_rows(self, store_ids) -> np.ndarray:
        """Positions of the given store ids; unknown ids raise DataError naming them."""
        ids = np.asarray(store_ids, dtype=np.int64)
        rows = np.searchsorted(self.store_ids, ids)
        rows = np.clip(rows, 0, self.n_stores - 1)
        unknown = ids[self.store_ids[rows] != ids]
        if unknown.size:
            raise DataError(
                f"unknown store id(s) {unknown[:10].tolist()}; the data has "
                f"{self.n_stores} stores from {self.store_ids[0]} to {self.store_ids[-1]}"
            )
        return rows

    def select_stores(self, store_ids) -> SalesCube:
        rows = self.store_rows(np.unique(np.asarray(store_ids, dtype=np.int64)))
        return self._take(rows, slice(None))

    def select_days(self, first=None, last=None) -> SalesCube:
        """Days in [first, last] (inclusive; None = open end)."""
        keep = np.ones(self.n_days, bool)
        if first is not None:
            keep &= self.dates >= np.datetime64(first, "D")
        if last is not None:
            keep &= self.dates <= np.datetime64(last, "D")
        if not keep.any():
            raise DataError(f"no days between {first} and {last}; the data covers {self.dates[0]}..{self.dates[-1]}")
        return self._take(slice(None), np.flatnonzero(keep))

    def _take(self, rows, cols) -> SalesCube:
        cov = self.covariates
        if not isinstance(rows, slice):
            cov = cov.take_stores(rows)
        if not isinstance(cols, slice):
            cov = cov.take_days(cols)
        grid = (rows, cols) if isinstance(rows, slice) or isinstance(cols, slice) else np.ix_(rows, cols)
        design = Design(self.design.index[grid], self.design.value[grid], self.design.names, self.design.groups)
        stores = self.stores if isinstance(rows, slice) else self.stores.iloc[rows].reset_index(drop=True)
        return SalesCube(
            self.store_ids[rows],
            self.dates[cols],
            self.sales[grid],
            self.observed[grid],
            self.status[grid],
            cov,
            design,
            stores,
            self.spec,
            self.label,
        )

    def with_spec(self, spec: FeatureSpec) -> SalesCube:
        """The same data encoded with other features (no re-reading of the source)."""
        return dataclasses.replace(self, design=encode(spec, self.covariates), spec=spec)

    def with_origin(self, origin, season_fallback: np.ndarray | None = None) -> SalesCube:
        """The same data with the trend's origin moved (a date, or one date per store), re-encoded.

        The origin should be the last day the fit learns from: a backtest's cutoff, a new store's
        last known day (see Covariates.origin). The yearly profiles are recomputed from the days up
        to the origin; stores with too short a history get `season_fallback` (SEASON_WEEKS,), by
        default the mean profile of the others here."""
        origin = np.asarray(origin, dtype="datetime64[D]")
        if origin.ndim and origin.shape != (self.n_stores,):
            raise DataError(f"one trend origin per store expected ({self.n_stores}), got {origin.shape[0]}")
        origin = origin if origin.ndim else origin[()]
        season = season_profile(self.sales, self.observed, self.covariates, origin, season_fallback)
        cov = dataclasses.replace(
            self.covariates,
            origin=origin,
            season=season.all,
            season_left_out=season.left_out,
            season_years=season.years,
        )
        return dataclasses.replace(self, covariates=cov, design=encode(self.spec, cov))

    def summary(self) -> dict:
        status = self.status
        return {
            "n_stores": self.n_stores,
            "n_days": self.n_days,
            "first_date": str(self.dates[0]),
            "last_date": str(self.dates[-1]),
            "n_rows": int((status != MISSING).sum()),
            "n_observed": int(self.observed.sum()),
            "n_closed": int((status == CLOSED).sum()),
            "n_missing_rows": int((status == MISSING).sum()),
            "n_open_not_observed": int(((status == OPEN) & ~self.observed).sum()),
            "n_features": self.design.n_features,
        }


def _variant_codes(stores: pd.DataFrame) -> tuple[np.ndarray, tuple]:
    combos = (stores["StoreType"].astype(str) + "/" + stores["Assortment"].astype(str)).to_numpy()
    levels, codes = np.unique(combos, return_inverse=True)
    return codes.astype(np.int16), tuple(levels.tolist())


def _promo2_months(stores: pd.DataFrame) -> np.ndarray:
    """(S, 12) months named in PromoInterval ("Jan,Apr,Jul,Oct"); all False without the column."""
    out = np.zeros((len(stores), 12), bool)
    if "PromoInterval" in stores.columns:
        text = stores["PromoInterval"].fillna("").astype(str).str.replace("Sept", "Sep")
        for m, name in enumerate(MONTH_NAMES):
            out[:, m] = text.str.contains(name).to_numpy()
    return out


def _promo2_since(stores: pd.DataFrame) -> np.ndarray:
    """Monday of Promo2SinceWeek in Promo2SinceYear; NaT where unknown."""
    since = np.full(len(stores), np.datetime64("NaT"), "datetime64[D]")
    if {"Promo2SinceYear", "Promo2SinceWeek"} <= set(stores.columns):
        year = pd.to_numeric(stores["Promo2SinceYear"], errors="coerce").to_numpy()
        week = pd.to_numeric(stores["Promo2SinceWeek"], errors="coerce").to_numpy()
        ok = np.isfinite(year) & np.isfinite(week)
        jan1 = (year[ok].astype(np.int64) - 1970).astype("datetime64[Y]").astype("datetime64[D]")
        since[ok] = jan1 + ((week[ok].astype(np.int64) - 1) * 7).astype("timedelta64[D]")
    return since


class SeasonProfile(NamedTuple):
    all: np.ndarray  # (S, SEASON_WEEKS) from every year up to the origin: for forecast days
    left_out: np.ndarray  # (S, Y, SEASON_WEEKS) without year Y: for training days of year Y
    years: np.ndarray  # (Y,) the calendar years of left_out


SEASON_MIN_DAYS = 300  # observed days before the origin a store needs for its yearly profile
SEASON_LEVEL_DAYS = 182  # half-width of the moving level taken out of the profile
SEASON_AFTER_CLOSURE_DAYS = 30  # reopening spikes left out of the profile
SEASON_CLIP = 1.0  # log-residuals are clipped to +-this before averaging (one-off events)
SEASON_DECEMBER_FROM = 11  # Dec 11-31 left out of the profile: the Christmas season's own days


def _moving_mean(values: np.ndarray, valid: np.ndarray, half: int) -> np.ndarray:
    """(S, T) mean of the valid values within +-half days (fewer at the edges), NaN-free."""
    n_days = values.shape[1]
    total = np.concatenate([np.zeros((len(values), 1)), np.cumsum(np.where(valid, values, 0.0), axis=1)], axis=1)
    count = np.concatenate([np.zeros((len(values), 1)), np.cumsum(valid, axis=1)], axis=1)
    hi = np.minimum(np.arange(n_days) + half + 1, n_days)
    lo = np.maximum(np.arange(n_days) - half, 0)
    n = count[:, hi] - count[:, lo]
    return np.where(n > 0, (total[:, hi] - total[:, lo]) / np.maximum(n, 1), 0.0)


def season_profile(
    sales: np.ndarray, observed: np.ndarray, cov: Covariates, origin, fallback: np.ndarray | None = None
) -> SeasonProfile:
    """Each store's yearly profile of log sales, from its days up to the origin: `.all`
    (S, SEASON_WEEKS) from every year, `.left_out` (S, years, SEASON_WEEKS) without each year.

    Log sales less the store's weekday x promo means and its moving one-year level (so growth and
    level shifts are not read as season), clipped, averaged by week of the year over the years
    seen, smoothed over neighbouring weeks (circularly) and centred. Holidays, the heart of the
    Christmas season (from SEASON_DECEMBER_FROM to Dec 31, the christmas features' days) and the
    days around closures are left out (their own features hold them). A store with fewer than
    SEASON_MIN_DAYS such days gets `fallback` (SEASON_WEEKS,), by default the mean profile of the
    stores that have one (the population's season; zero where none has)."""
    n_stores = sales.shape[0]
    dates = cov.dates
    origin = np.broadcast_to(np.asarray(origin, dtype="datetime64[D]"), (n_stores,))
    december_run = (month_of(dates) == 11) & (day_of_month(dates) >= SEASON_DECEMBER_FROM)
    since, until = closure_distances(cov)
    use = (
        observed
        & (dates[None, :] <= origin[:, None])
        & (cov.state_holiday == 0)
        & ~december_run[None, :]
        & (since > SEASON_AFTER_CLOSURE_DAYS)
        & (until > CLOSURE_WINDOW_DAYS)
    )
    logy = np.log(np.where(use, sales, 1.0).astype(np.float64))
    key = (weekday_of(dates)[None, :] * 2 + (cov.promo > 0)).astype(np.int64)
    cell_key = np.arange(n_stores)[:, None] * 14 + key
    count = np.bincount(cell_key[use], minlength=n_stores * 14)
    means = np.bincount(cell_key[use], logy[use], n_stores * 14) / np.maximum(count, 1)
    resid = logy - means[cell_key]
    resid = np.clip(resid - _moving_mean(resid, use, SEASON_LEVEL_DAYS), -SEASON_CLIP, SEASON_CLIP)
    store, col = np.nonzero(use)
    years = year_of(dates)
    year_list = np.unique(years)
    year_index = np.searchsorted(year_list, years)
    n_years = len(year_list)
    cell = (store * n_years + year_index[col]) * SEASON_WEEKS + week_of_year(dates)[col]
    size = n_stores * n_years * SEASON_WEEKS
    total = np.bincount(cell, resid[store, col], size).reshape(n_stores, n_years, SEASON_WEEKS)
    cnt = np.bincount(cell, minlength=size).reshape(n_stores, n_years, SEASON_WEEKS).astype(np.float64)
    profile = _finish_profile(total.sum(1), cnt.sum(1))
    # Cross-fitting: a training day of year Y sees the profile built without year Y, so the
    # covariate never contains that day's own noise (which would fit it too well in sample and
    # make the fitted dispersion, hence the forecast intervals, too narrow).
    left_out = _finish_profile(total.sum(1, keepdims=True) - total, cnt.sum(1, keepdims=True) - cnt)
    short = use.sum(1) < SEASON_MIN_DAYS
    if fallback is None:
        fallback = profile[~short].mean(0) if (~short).any() else np.zeros(SEASON_WEEKS)
    profile[short] = np.asarray(fallback, dtype=np.float64)
    left_out[short] = np.asarray(fallback, dtype=np.float64)
    return SeasonProfile(profile.astype(np.float32), left_out.astype(np.float32), year_list.astype(np.int16))


def _finish_profile(total: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Weekly means smoothed over neighbouring weeks (circularly) and centred; (..., SEASON_WEEKS)."""
    kernel = {-1: 1.0, 0: 2.0, 1: 1.0}
    num = sum(w * np.roll(total, k, axis=-1) for k, w in kernel.items())
    den = sum(w * np.roll(cnt, k, axis=-1) for k, w in kernel.items())
    profile = np.where(den > 0, num / np.maximum(den, 1e-9), 0.0)
    weeks_seen = den > 0
    n_seen = np.maximum(weeks_seen.sum(-1, keepdims=True), 1)
    profile -= (profile * weeks_seen).sum(-1, keepdims=True) / n_seen
    profile[~weeks_seen] = 0.0
    return profile


def _competition_since(stores: pd.DataFrame) -> np.ndarray:
    """First day of CompetitionOpenSinceMonth in CompetitionOpenSinceYear; NaT where unknown."""
    since = np.full(len(stores), np.datetime64("NaT"), "datetime64[D]")
    if {"CompetitionOpenSinceYear", "CompetitionOpenSinceMonth"} <= set(stores.columns):
        year = pd.to_numeric(stores["CompetitionOpenSinceYear"], errors="coerce").to_numpy(dtype=float)
        month = pd.to_numeric(stores["CompetitionOpenSinceMonth"], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(year) & np.isfinite(month) & (year >= 1900) & (year <= 2200) & (month >= 1) & (month <= 12)
        months = (year[ok].astype(np.int64) - 1970) * 12 + month[ok].astype(np.int64) - 1
        since[ok] = months.astype("datetime64[M]").astype("datetime64[D]")
    return since


def build_cube(
    train: pd.DataFrame, stores: pd.DataFrame, spec: FeatureSpec | None = None, label: str = ""
) -> SalesCube:
    """Canonical (validated) sales and store tables -> SalesCube."""
    spec = spec or FeatureSpec()
    if train.empty:
        raise DataError("the sales table has no rows")
    store_ids = np.unique(train["Store"].to_numpy())
    day_of_row = train["Date"].to_numpy().astype("datetime64[D]")
    first, last = day_of_row.min(), day_of_row.max()
    dates = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    shape = (len(store_ids), len(dates))
    rows = np.searchsorted(store_ids, train["Store"].to_numpy())
    cols = (day_of_row - first).astype(np.int64)

    def grid(values, dtype, fill=0):
        out = np.full(shape, fill, dtype=dtype)
        out[rows, cols] = values
        return out

    is_open = train["Open"].to_numpy() == 1
    sales_raw = train["Sales"].to_numpy(dtype=np.float64)
    is_observed = is_open & np.isfinite(sales_raw) & (sales_raw > 0)
    status = grid(np.where(is_open, OPEN, CLOSED), np.int8, MISSING)
    observed = grid(is_observed, bool, False)
    sales = grid(np.where(is_observed, sales_raw, 0.0), np.float32)

    stores = stores.set_index("Store").loc[store_ids].reset_index()
    variant, variant_levels = _variant_codes(stores)
    cov = Covariates(
        dates=dates,
        promo=grid(train["Promo"].to_numpy(), np.int8),
        state_holiday=grid(train["StateHoliday"].to_numpy(), np.int8),
        school_holiday=grid(train["SchoolHoliday"].to_numpy(), np.int8),
        promo2=stores["Promo2"].to_numpy().astype(np.int8),
        variant=variant,
        variant_levels=variant_levels,
        promo2_months=_promo2_months(stores),
        promo2_since=_promo2_since(stores),
        # The trend's day 0: the last day with observed sales (later rows only carry the calendar).
        origin=dates[np.flatnonzero(observed.any(axis=0))[-1]] if observed.any() else dates[-1],
        grid_first=dates[0],
        closed=status == CLOSED,
        competition_since=_competition_since(stores),
    )
    season = season_profile(sales, observed, cov, cov.origin)
    cov = dataclasses.replace(cov, season=season.all, season_left_out=season.left_out, season_years=season.years)
    return SalesCube(
        store_ids=store_ids.astype(np.int64),
        dates=dates,
        sales=sales,
        observed=observed,
        status=status,
        covariates=cov,
        design=encode(spec, cov),
        stores=stores,
        spec=spec,
        label=label,
    )
