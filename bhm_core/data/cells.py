"""Observed cells: what a fit uses from its data, as flat arrays (never the dense cube).

`observed_cells(cube)` lists the cube's observed store-days; `FitData` is what a fit needs from its
data (the cells, one id per store row, the feature names and groups, a fingerprint); virtual and
synthetic series (scale/) build FitData without a cube.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from bhm_core.data.cube import SalesCube
from bhm_core.errors import DataError


@dataclass(frozen=True, eq=False)
class Cells:
    """Observed cells of a cube as flat arrays, before padding.

    From a cube the dtypes are int32/float32; the scale generators use narrower ones where they are
    exact (uint8 slot index and value, int16 day) to fit 10^8 cells in memory.
    """

    store: np.ndarray  # (n,) int32
    day: np.ndarray  # (n,) int32
    index: np.ndarray  # (n, K) int32
    value: np.ndarray  # (n, K) float32
    y: np.ndarray  # (n,) float32


def observed_cells(cube: SalesCube) -> Cells:
    store, day = np.nonzero(cube.observed)
    if store.size == 0:
        raise DataError("no observed store-days to fit: every day is closed or missing")
    return Cells(
        store.astype(np.int32),
        day.astype(np.int32),
        cube.design.index[store, day].astype(np.int32),
        cube.design.value[store, day],
        cube.sales[store, day].astype(np.float32),
    )


@dataclass(frozen=True, eq=False)
class FitData:
    """What a fit uses from its data: the observed cells (sorted by store), one id per store row,
    the feature names and groups, and a fingerprint of all of it (part of a fit's identity)."""

    cells: Cells
    store_ids: np.ndarray  # (S,) int64; cells.store indexes into it
    feature_names: tuple
    feature_groups: tuple
    fingerprint: str
    info: dict = field(default_factory=dict)  # goes into FitResult.meta (dates, origin of the series)

    @property
    def n_stores(self) -> int:
        return len(self.store_ids)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def from_cube(cls, cube: SalesCube) -> FitData:
        return cls(
            observed_cells(cube),
            cube.store_ids,
            tuple(cube.feature_names),
            tuple(cube.design.groups),
            cube.fingerprint,
            {"first_date": str(cube.dates[0]), "last_date": str(cube.dates[-1])},
        )


def fingerprint_of(*parts) -> str:
    """Hash of plain values by their repr (for FitData built without a cube)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(repr(part).encode())
    return h.hexdigest()


COUNT_BLOCK = 1 << 20  # cells counted at a time


def store_sums(store: np.ndarray, n_stores: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Cells (or the sum of `weights`) per store, a block of cells at a time: np.bincount of all
    of them would first copy the stores as int64 and the weights as float64 (1.3 GB at 84 M cells)."""
    out = np.zeros(n_stores, np.int64 if weights is None else np.float64)
    for start in range(0, len(store), COUNT_BLOCK):
        part = slice(start, start + COUNT_BLOCK)
        out += np.bincount(store[part], weights=None if weights is None else weights[part], minlength=n_stores)
    return out


def store_sorted(cells: Cells) -> Cells:
    if np.all(cells.store[1:] >= cells.store[:-1]):
        return cells
    order = np.argsort(cells.store, kind="stable")
    return Cells(cells.store[order], cells.day[order], cells.index[order], cells.value[order], cells.y[order])


def stores_per_feature(cube: SalesCube) -> np.ndarray:
    """(F,) how many stores have at least one observed day on which each feature is non-zero: how
    well a fit on these stores can tell a feature's chain-wide spread."""
    cells = observed_cells(cube)
    n_features = cube.design.n_features
    used = cells.value != 0
    keys = cells.store[:, None].astype(np.int64) * n_features + cells.index
    pairs = np.unique(keys[used])
    return np.bincount(pairs % n_features, minlength=n_features)
