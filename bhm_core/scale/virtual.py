"""Many series for scale experiments, built straight as FitData (never a dense store x day cube).

Virtual stores (the trick the original research used to show scale): every real store's history
(first to last observed day) is cut into consecutive random segments of 7 to 22 weeks (49 to 154
days) and each segment becomes a store of its own. One *pass* puts every observed cell in exactly
one virtual store; Rossmann gives ~10^4 series per pass, and further passes, each cut at other
random points, add series up to the number asked for (10^5 series = ~10 passes, so each
observation then appears about ten times in the data: a workload for measuring scale, not a
statistically new data set).

Synthetic series reach 10^6 and beyond: drawn from the model itself (the demo chain's parameters)
over the demo's calendar, 7 to 22 weeks each, generated a block of series at a time into exactly
sized, narrow arrays (22 bytes per cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bhm_core.data.calendar import WEEKDAY_NAMES, weekday_of
from bhm_core.data.cells import Cells, FitData, fingerprint_of, observed_cells
from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS
from bhm_core.data.cube import SalesCube
from bhm_core.errors import ConfigError
from bhm_core.inference.packing import aligned_copy, cells_buffer
from bhm_core.model.hierarchy import linear_predictor, store_parameters
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL

MIN_WEEKS, MAX_WEEKS = 7, 22
MAX_SERIES = 10_000_000
BLOCK = 1 << 15  # synthetic series generated at a time


@dataclass(frozen=True, eq=False)
class Series:
    """FitData plus where each series came from: per series `source_store` (real store id, or -1),
    `pass_` (virtual: which cut), `first_day`/`last_day` (day numbers of the segment in the
    calendar starting at `info['first_date']`)."""

    data: FitData
    origin: dict
    truth: dict | None = None


def _check(n_series, min_weeks, max_weeks) -> None:
    if n_series is not None and not 1 <= n_series <= MAX_SERIES:
        raise ConfigError(f"the number of series must be in [1, {MAX_SERIES:,}], got {n_series}")
    if not 1 <= min_weeks <= max_weeks:
        raise ConfigError(f"segment lengths need 1 <= min_weeks <= max_weeks, got {min_weeks}..{max_weeks}")


def _narrow(cells: Cells) -> Cells:
    """The same cells in the narrowest exact dtypes (values 0/1 -> uint8, small indices -> uint8)."""
    value = cells.value
    if np.array_equal(value.astype(np.uint8), value):
        value = aligned_copy(value, np.uint8)
    index = aligned_copy(cells.index, np.uint8) if cells.index.max(initial=0) < 256 else cells.index
    return Cells(cells.store, cells.day.astype(np.int16), index, value, cells.y)


def _cut(rng, first: np.ndarray, end: np.ndarray, min_days: int, max_days: int) -> np.ndarray:
    """(S, M) segment starts per store over [first, end), unused entries a large number.

    A store's span is cut into m segments, m near span / mean length and feasible (every segment
    in [min_days, max_days]); lengths are drawn one after another, uniform on what keeps the rest
    feasible. Only a span shorter than min_days gives a shorter (single) segment.
    """
    span = np.maximum(end - first, 0)
    low_m = np.maximum(-(-span // max_days), 1)
    high_m = np.maximum(span // min_days, low_m)
    m = np.clip(np.rint(span / ((min_days + max_days) / 2)).astype(np.int64), low_m, high_m)
    starts = np.full((len(first), int(m.max(initial=1))), np.iinfo(np.int64).max)
    starts[:, 0] = first
    position, remaining = first.copy(), span.copy()
    for i in range(starts.shape[1] - 1):
        after = m - i - 1  # segments still to come after this one
        active = after > 0
        low = np.where(active, np.maximum(min_days, remaining - max_days * after), 0)
        high = np.where(active, np.minimum(max_days, remaining - min_days * after), 0)
        length = rng.integers(low, high + 1)
        position, remaining = position + length, remaining - length
        starts[active, i + 1] = position[active]
    return starts


def virtual_split(
    cells: Cells, n_stores: int, seed: int = 0, pass_: int = 0, min_weeks: int = MIN_WEEKS, max_weeks: int = MAX_WEEKS
):
    """One pass: each observed cell -> its virtual store. Returns (segment of each cell in order
    of (store, segment start), per virtual store: real store row, first day, last day)."""
    rng = np.random.default_rng([seed, pass_])
    first = np.full(n_stores, np.iinfo(np.int64).max)
    np.minimum.at(first, cells.store, cells.day.astype(np.int64))
    end = np.zeros(n_stores, np.int64)
    np.maximum.at(end, cells.store, cells.day.astype(np.int64) + 1)
    starts = _cut(rng, np.minimum(first, end), end, 7 * min_weeks, 7 * max_weeks)
    m = starts.shape[1]
    segment = np.zeros(len(cells.y), np.int64)
    for k in range(1, m):
        segment += cells.day >= starts[cells.store, k]
    key = cells.store.astype(np.int64) * m + segment
    keys, virtual = np.unique(key, return_inverse=True)  # sorted: cells stay store-ordered
    store, seg = keys // m, keys % m
    seg_first = starts[store, seg]
    following = np.where(seg + 1 < m, starts[store, np.minimum(seg + 1, m - 1)], np.iinfo(np.int64).max)
    seg_last = np.minimum(following, end[store]) - 1
    return virtual.astype(np.int32), store, seg_first, seg_last


def virtual_series(
    cube: SalesCube,
    n_series: int | None = None,
    *,
    seed: int = 0,
    min_weeks: int = MIN_WEEKS,
    max_weeks: int = MAX_WEEKS,
) -> Series:
    """Virtual stores of a cube: one pass (n_series=None) or as many passes as reach n_series."""
    _check(n_series, min_weeks, max_weeks)
    base = _narrow(observed_cells(cube))
    parts, origin, total, pass_ = [], [], 0, 0
    while True:
        virtual, store, seg_first, seg_last = virtual_split(base, cube.n_stores, seed, pass_, min_weeks, max_weeks)
        take = len(store) if n_series is None else min(len(store), n_series - total)
        keep = virtual < take
        parts.append((virtual[keep] + total, keep))
        origin.append((cube.store_ids[store[:take]], np.full(take, pass_), seg_first[:take], seg_last[:take]))
        total += take
        pass_ += 1
        if n_series is None or total >= n_series:
            break
    cells = Cells(
        np.concatenate([v for v, _ in parts]),
        *(np.concatenate([a[keep] for _, keep in parts]) for a in (base.day, base.index, base.value, base.y)),
    )
    origin = {
        name: np.concatenate([o[i] for o in origin])
        for i, name in enumerate(("source_store", "pass_", "first_day", "last_day"))
    }
    fingerprint = fingerprint_of("virtual", cube.fingerprint, seed, min_weeks, max_weeks, n_series)
    data = FitData(
        cells,
        np.arange(total, dtype=np.int64),
        tuple(cube.feature_names),
        tuple(cube.design.groups),
        fingerprint,
        {"series": "virtual", "passes": pass_, "first_date": str(cube.dates[0]), "last_date": str(cube.dates[-1])},
    )
    return Series(data, origin)


# ----------------------------------------------------------------------------------------------
# Synthetic series from the model


def _synthetic_design():
    from bhm_core.data.demo import N_STATES

    variants = ("a/a", "a/c", "c/c", "d/c")
    names = (
        [f"weekday_{d}" for d in WEEKDAY_NAMES]
        + ["promo"]
        + [f"state_holiday_{lvl}" for lvl in STATE_HOLIDAY_LEVELS]
        + ["school_holiday", "promo2"]
        + [f"variant_{v}" for v in variants]
    )
    groups = (
        ["weekday"] * 7
        + ["promo"]
        + ["state_holiday"] * 4
        + ["school_holiday", "promo2"]
        + ["store_variant"] * len(variants)
    )
    return tuple(names), tuple(groups), N_STATES, len(variants)


def synthetic_series(
    n_series: int, *, seed: int = 0, n_days: int = 942, min_weeks: int = MIN_WEEKS, max_weeks: int = MAX_WEEKS
) -> Series:
    """n_series series drawn from the model (Sundays and state holidays closed), a block at a time."""
    from bhm_core.data.demo import true_parameters

    _check(n_series, min_weeks, max_weeks)
    if not 7 * max_weeks <= n_days <= 5000:
        raise ConfigError(f"n_days must be in [{7 * max_weeks}, 5000], got {n_days}")
    names, groups, n_states, n_variants = _synthetic_design()
    rng = np.random.default_rng([seed, 7])
    # No stores: only the global parameters (series draw their own per block below), so the
    # synthetic truth is the demo's and the rng's state afterwards is unchanged by this reuse.
    truth = {
        k: v
        for k, v in true_parameters(rng, names, range(n_variants), 0).items()
        if k in ("theta_mu", "theta_sigma", "r_mu", "r_sigma")
    }
    calendar = _synthetic_calendar(n_days, n_states, n_variants)
    open_, dates = calendar[1], calendar[4]
    open_before = np.concatenate([np.zeros((n_states, 1), np.int64), np.cumsum(open_, axis=1)], axis=1)
    length = 7 * rng.integers(min_weeks, max_weeks + 1, n_series)
    first = rng.integers(0, n_days - length + 1)
    state = rng.integers(0, n_states, n_series)
    counts = open_before[state, first + length] - open_before[state, first]
    total = int(counts.sum())
    cells = Cells(  # index and value aligned: a CPU fit's packed cells are then these arrays (pack_by_store)
        np.empty(total, np.int32),
        np.empty(total, np.int16),
        cells_buffer(total, (6,), np.uint8),
        cells_buffer(total, (6,), np.uint8),
        np.empty(total, np.float32),
    )
    offset = np.concatenate([[0], np.cumsum(counts)])
    for start in range(0, n_series, BLOCK):
        stop = min(start + BLOCK, n_series)
        block_rng = np.random.default_rng([seed, 8, start])
        _synthetic_block(
            block_rng,
            cells,
            slice(offset[start], offset[stop]),
            np.arange(start, stop),
            first[start:stop],
            length[start:stop],
            state[start:stop],
            truth,
            calendar,
        )
    return _synthetic_result(
        cells, first, length, truth, dates, (n_series, seed, n_days, min_weeks, max_weeks), names, groups
    )


def _synthetic_result(cells, first, length, truth, dates, identity: tuple, names, groups) -> Series:
    n_series = len(first)
    origin = {
        "source_store": np.full(n_series, -1),
        "pass_": np.zeros(n_series, np.int64),
        "first_day": first,
        "last_day": first + length - 1,
    }
    fingerprint = fingerprint_of("synthetic", *identity)
    data = FitData(
        cells,
        np.arange(n_series, dtype=np.int64),
        names,
        groups,
        fingerprint,
        {"series": "synthetic", "first_date": str(dates[0]), "last_date": str(dates[-1])},
    )
    return Series(data, origin, truth)


def _synthetic_calendar(n_days: int, n_states: int, n_variants: int):
    """The demo's calendar for every state: (weekday, open, holiday, school, dates, n_variants)."""
    from bhm_core.data.demo import FIRST_DATE, holiday_calendar, school_calendar

    dates = FIRST_DATE + np.arange(n_days)
    weekday = weekday_of(dates).astype(np.int64)
    holiday = holiday_calendar(dates, np.arange(n_states))  # (states, T)
    school = school_calendar(dates, np.arange(n_states))
    open_ = (weekday[None, :] < 6) & (holiday == 0)
    return weekday, open_, holiday, school, dates, n_variants


def _synthetic_block(rng, cells: Cells, out: slice, series, first, length, state, truth, calendar):
    weekday, open_, holiday, school, dates, n_variants = calendar
    n = len(series)
    variant = rng.integers(0, n_variants, n)
    promo2 = (rng.random(n) < 0.5).astype(np.uint8)
    phase = rng.integers(0, 2, n)
    z = rng.normal(size=(n, len(truth["theta_mu"])))
    latents = {
        "theta_mu": truth["theta_mu"],
        "theta_sigma": truth["theta_sigma"],
        "z": z,
        "r_mu": np.asarray(truth["r_mu"]),
        "r_sigma": np.asarray(truth["r_sigma"]),
        "w": rng.normal(0.0, 0.1, n),
    }
    theta, r, _ = store_parameters(latents)
    # every day of every series in the block, then only the open ones
    local = np.repeat(np.arange(n), length)
    day = np.arange(len(local)) - np.repeat(np.cumsum(length) - length, length) + first[local]
    keep = open_[state[local], day]
    local, day = local[keep], day[keep]
    week = (dates[day].astype(np.int64) + 3) // 7
    promo = ((weekday[day] < 5) & ((week + phase[local]) % 2 == 0)).astype(np.uint8)
    index = np.stack(
        [
            weekday[day],
            np.full(len(day), 7),
            8 + holiday[state[local], day],
            np.full(len(day), 12),
            np.full(len(day), 13),
            14 + variant[local],
        ],
        axis=1,
    )
    value = np.stack(
        [
            np.ones(len(day), np.uint8),
            promo,
            np.ones(len(day), np.uint8),
            school[state[local], day].astype(np.uint8),
            promo2[local],
            np.ones(len(day), np.uint8),
        ],
        axis=1,
    )
    eta = linear_predictor(theta, local, index, value)
    y = NEGATIVE_BINOMIAL.sample(rng, eta, r[local])
    cells.store[out], cells.day[out] = series[local], day
    cells.index[out], cells.value[out] = index, value
    cells.y[out] = np.maximum(y, 1)  # zero sales are not observations; at these means P(0) ~ 1e-100
