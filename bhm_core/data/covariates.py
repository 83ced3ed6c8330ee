"""What the features are computed from: raw per-cell covariates, and the index-coded design.

Layout choice: every feature group contributes one or more *slots* per cell, each slot holding the
column index of the active feature and its value. A categorical group (weekday, state holiday, store
variant) fills one slot with value 1, a binary or real feature fills one slot with its value. The
linear predictor is then ``eta[s, t] = sum_k theta[s, index[s, t, k]] * value[s, t, k]``: a gather of
K numbers per cell instead of a dot product with a dense one-hot row. For the reference features
that is 6 slots instead of 23 columns (Rossmann: 38 MB int16+float32 instead of 97 MB float32), and
the fit touches only K parameters per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

STATE_HOLIDAY_LEVELS = ("0", "a", "b", "c")
STATE_HOLIDAY_LABELS = {"0": "none", "a": "public", "b": "Easter", "c": "Christmas"}


@dataclass(frozen=True, eq=False)
class Covariates:
    """Raw inputs on the store x day grid, before encoding. Codes, not one-hot."""

    dates: np.ndarray  # (T,) datetime64[D]
    promo: np.ndarray  # (S, T) int8, 0/1
    state_holiday: np.ndarray  # (S, T) int8, index into STATE_HOLIDAY_LEVELS
    school_holiday: np.ndarray  # (S, T) int8, 0/1
    promo2: np.ndarray  # (S,) int8, 0/1
    variant: np.ndarray  # (S,) int16, index into variant_levels
    variant_levels: tuple  # e.g. ("a/a", "a/c", ...) as StoreType/Assortment
    promo2_months: np.ndarray  # (S, 12) bool: months in which the store's Promo2 round starts
    promo2_since: np.ndarray  # (S,) datetime64[D]: when Promo2 started (NaT: never)
    # Day 0 of the trend: the last day of training (the data's last observed day; a backtest's
    # cutoff; a new store's last known day), kept by every window of the cube. Intercepts are then
    # the level where forecasts start; with a mean-field guide, a distant origin would inflate the
    # level's uncertainty by the trend's (their posterior correlation is not represented).
    # A datetime64 for every store, or an (S,) array: one origin per store.
    origin: np.datetime64 | np.ndarray
    # Per-store calendars that windows keep whole (take_days does not cut them, so a forecast window
    # past the training days still sees them): looked up by date from grid_first on.
    grid_first: np.datetime64  # the date of column 0 of `closed`
    closed: np.ndarray  # (S, T0) bool: the store was closed that day
    competition_since: np.ndarray  # (S,) datetime64[D]: competitor opened (NaT: unknown)
    # Set by build_cube right after the rest (cube.season_profile reads the other covariates).
    season: np.ndarray | None = None  # (S, calendar.SEASON_WEEKS) float32: the store's yearly log-sales profile
    # The same without each year (cube.season_profile): training days (up to the origin) of a year in
    # season_years read these, so the covariate never holds a day's own noise.
    season_left_out: np.ndarray | None = None  # (S, Y, calendar.SEASON_WEEKS) float32
    season_years: np.ndarray | None = None  # (Y,) int

    def take_stores(self, rows: np.ndarray) -> Covariates:
        origin = self.origin[rows] if np.ndim(self.origin) else self.origin
        return replace(
            self,
            promo=self.promo[rows],
            state_holiday=self.state_holiday[rows],
            school_holiday=self.school_holiday[rows],
            promo2=self.promo2[rows],
            variant=self.variant[rows],
            promo2_months=self.promo2_months[rows],
            promo2_since=self.promo2_since[rows],
            origin=origin,
            closed=self.closed[rows],
            competition_since=self.competition_since[rows],
            season=self.season[rows],
            season_left_out=self.season_left_out[rows],
        )

    def take_days(self, cols: np.ndarray) -> Covariates:
        return replace(
            self,
            dates=self.dates[cols],
            promo=self.promo[:, cols],
            state_holiday=self.state_holiday[:, cols],
            school_holiday=self.school_holiday[:, cols],
        )


@dataclass(frozen=True, eq=False)
class Design:
    """Index-coded design: see the module docstring."""

    index: np.ndarray  # (S, T, K) int16 feature column per slot
    value: np.ndarray  # (S, T, K) float32
    names: tuple  # (F,) feature names
    groups: tuple  # (F,) feature group of each feature, a name in features.FEATURE_GROUPS

    @property
    def n_features(self) -> int:
        return len(self.names)
