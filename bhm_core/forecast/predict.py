"""Posterior predictive forecasts from a fit, in chunks of stores so memory stays flat.

Latents are drawn from the fitted guide; the observation law of each draw is read off the model's
trace and sampled on the host (store-keyed, so chunking never changes a number). Output is a tidy
frame in the metrics schema (store, date, method, y, point, lo_L/hi_L, crps) plus `median`, `open`, `known`,
`expected_closed`, `promo` and `state_holiday` columns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro import handlers

from bhm_core.data.cube import CLOSED, MISSING, SalesCube
from bhm_core.data.features import encode, weekday_of
from bhm_core.errors import DataError
from bhm_core.evaluation.metrics import crps_from_samples
from bhm_core.inference.engine import FitResult
from bhm_core.inference.packing import bucket
from bhm_core.model.hierarchy import (
    BASIS,
    LOCAL_SITES,
    ModelData,
    NegBinomialMean,
    SiteParams,
    Whitening,
    guide_draw,
    model,
)

LEVELS = (50, 80, 90, 95)
CLOSED_WEEKS = 8  # recent occurrences of a weekday that decide a store's usual closing days
CLOSED_SHARE = 0.75  # closed on at least this share of them -> expected closed after the data
METHOD = "hierarchical"
CHUNK_STORES = 64  # stores drawn together: memory is one chunk's samples
MAX_POISSON_RATE = 1e15  # NumPy's Poisson sampler refuses larger rates (only a diverged fit has them)
SHOCK_STREAM = 7919  # generator key of the day shocks, apart from the stores' (seed, id)
DAY_NUMBER_OFFSET = 10**6  # dates as days since 1970 made non-negative for the generator key
IDIOSYNCRATIC_FLOOR = 0.25  # share of a store-day's own variance kept when the shock takes its part
LOG_MEAN_RANGE = (-50.0, 40.0)  # exp(-50): no sales; exp(40) > MAX_POISSON_RATE
LOG_DISPERSION_RANGE = (-30.0, 30.0)


@dataclass(frozen=True)
class Scenario:
    """What to assume for days the data do not cover (and, with promo set, for every forecast day).

    promo: None = as recorded (future days: no promo), 0 = promo off, 1 = promo on Mon-Fri.
    """

    promo: int | None = None


def _window_covariates(cube: SalesCube, rows: np.ndarray, dates: np.ndarray, scenario: Scenario):
    """Covariates of the given stores on the given dates; days past the data get calendar defaults."""
    base = cube.covariates.take_stores(rows)
    col = (dates - cube.dates[0]).astype(np.int64)
    known = (col >= 0) & (col < cube.n_days)
    safe = np.clip(col, 0, cube.n_days - 1)

    def per_cell(grid):
        return np.where(known[None, :], grid[:, safe], 0).astype(grid.dtype)

    promo = per_cell(base.promo)
    if scenario.promo is not None:
        weekday = ((dates.astype(np.int64) + 3) % 7)[None, :]
        promo = np.broadcast_to((weekday < 5) & (scenario.promo == 1), promo.shape).astype(np.int8)
    return replace(
        base,
        dates=dates,
        promo=promo,
        state_holiday=per_cell(base.state_holiday),
        school_holiday=per_cell(base.school_holiday),
    )


def draw_latents(result: FitResult, key, n_samples: int, rows: np.ndarray) -> dict:
    """Constrained latent samples from the guide; local sites only for the given store rows.

    A local site's draws for a store depend only on the key and the store's id, the globals' only
    on the key: a store gets the same numbers whichever other stores are drawn with it, so chunked
    and unchunked forecasts agree exactly, and sample n uses the same globals for every store.
    """
    return {name: np.asarray(draws) for name, draws in _draw_latents_async(result, key, n_samples, rows).items()}


def _draw_latents_async(result: FitResult, key, n_samples: int, rows: np.ndarray) -> dict:
    """`draw_latents` as JAX arrays still being computed (JAX dispatches asynchronously)."""
    ids = jnp.asarray(np.asarray(result.store_ids)[np.asarray(rows)].astype(np.uint32))
    out = {}
    sites = {name: site for name, site in result.params.items() if name != BASIS}
    basis = Whitening(*(a[rows] for a in result.params[BASIS])) if BASIS in result.params else None
    for i, (name, site) in enumerate(sorted(sites.items())):
        site_key = jax.random.fold_in(key, i)
        if name in LOCAL_SITES:
            site = SiteParams(*(a[rows] for a in site))
            eps = _per_store_normal(site_key, ids, n_samples, tuple(np.shape(site.loc)[1:]))
        else:
            eps = jax.random.normal(site_key, (n_samples, *np.shape(site.loc)))
        _, out[name] = guide_draw(name, site, eps, basis)
    return out


@partial(jax.jit, static_argnums=(2, 3))
def _per_store_normal(key, ids, n_samples: int, shape: tuple):
    """(n_samples, stores, *shape) standard normals, store i's from fold_in(key, id_i) alone."""

    def draw(i):
        return jax.random.normal(jax.random.fold_in(key, i), (n_samples, *shape))

    return jnp.moveaxis(jax.vmap(draw)(ids), 0, 1)


@jax.jit
def _observation_law(latents, design_index, design_value, prior):
    """(n_samples, stores * days) log mean and log dispersion of y under each posterior draw.

    The law is read off the model's own trace (its y site, observed at a placeholder), so the
    prediction is the model's: only the final Gamma-Poisson draw happens outside it (`_draw_y`).
    """
    data = _chunk_data(design_index, design_value)

    def one(draw):
        trace = handlers.trace(handlers.substitute(model, data=draw)).get_trace(data, prior)
        law = trace["y"]["fn"]
        while not isinstance(law, NegBinomialMean):  # unwrap the mask handler's MaskedDistribution
            law = law.base_dist
        return law.log_mean, jnp.broadcast_to(law.log_dispersion, law.log_mean.shape)

    return jax.vmap(one)(latents)


def day_shocks(shock_sd: float, dates: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """(n_samples, days) chain-wide log shocks N(0, shock_sd^2), one per date and sample, shared by
    every store; date j's from a generator of (seed, date) alone, so any window or chunk agrees."""
    out = np.zeros((n_samples, len(dates)))
    if shock_sd > 0:
        for j, day in enumerate(dates.astype("datetime64[D]").astype(np.int64)):
            rng = np.random.default_rng([seed, SHOCK_STREAM, int(day) + DAY_NUMBER_OFFSET])
            out[:, j] = shock_sd * rng.standard_normal(n_samples)
    return out


def _draw_y(
    log_mean: np.ndarray, log_dispersion: np.ndarray, seed: int, store_ids, shocks: np.ndarray, shock_sd: float
) -> np.ndarray:
    """Gamma-Poisson draws, (n_samples, stores, days), store i's from a generator of (seed, id_i).

    Each day's chain-wide shock (`day_shocks`) multiplies every store's mean, and the Gamma gives
    up exactly as much relative variance, so a store-day's spread stays what the fit says while
    the stores move together. A store-day whose own variance is too small to give that up (a big
    store's promo day: the variance of a Gamma-Poisson is proportional to its mean) keeps
    IDIOSYNCRATIC_FLOOR of it and carries a correspondingly smaller share of the shock.

    On the host with NumPy: its Gamma and Poisson samplers are about 20x faster than JAX's on the
    CPU (rejection loops there run per element), and keying by store id keeps any chunking exact.
    """
    out = np.empty(log_mean.shape)
    for i, store in enumerate(store_ids):
        rng = np.random.default_rng([seed, int(store)])
        # Clipped so that a diverged fit's extreme laws give 0 or MAX_POISSON_RATE, never NaN.
        mu = np.clip(log_mean[:, i].astype(np.float64), *LOG_MEAN_RANGE)
        r = np.clip(log_dispersion[:, i].astype(np.float64), *LOG_DISPERSION_RANGE)
        variance = np.exp(r - mu)  # the Gamma's relative variance: Var = mean (1 + e^r)
        log_rate = mu
        if shock_sd > 0:
            # lognormal(s2) x Gamma(1/v') has relative variance (1 + v') e^s2 - 1: equal to v for
            # v' = (1 + v) e^-s2 - 1, which stays >= floor * v while s2 <= log((1 + v) / (1 + floor v)).
            s2 = np.minimum(shock_sd**2, np.log1p(variance) - np.log1p(IDIOSYNCRATIC_FLOOR * variance))
            variance = np.expm1(np.log1p(variance) - s2)  # (1 + v) e^-s2 - 1, exact for tiny v
            log_rate = mu + np.sqrt(s2) / shock_sd * shocks - 0.5 * s2  # E[exp(shock)] = exp(s2 / 2)
        rate = rng.gamma(1.0 / variance, np.exp(log_rate) * variance)
        out[:, i] = rng.poisson(np.minimum(rate, MAX_POISSON_RATE))
    return out


def _chunk_data(design_index, design_value) -> ModelData:
    n_stores, n_days, _ = design_index.shape
    store = jnp.repeat(jnp.arange(n_stores, dtype=jnp.int32), n_days)
    n = store.size
    return ModelData(
        store,
        design_index.reshape(n, -1).astype(jnp.int32),
        design_value.reshape(n, -1).astype(jnp.float32),
        jnp.zeros(n, jnp.float32),
        jnp.zeros(n, jnp.float32),
        jnp.ones(n, bool),
        jnp.ones(n_stores, bool),
        jnp.float32(1.0),
    )


def _prior_placeholder(result: FitResult):
    """The trace substitutes every latent, so prior values only give shapes."""
    from bhm_core.model.hierarchy import prior_arrays

    return prior_arrays(result.priors, result.feature_groups)


def sample_forecast(
    result: FitResult,
    cube: SalesCube,
    store_ids,
    dates,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    chunk_stores: int = CHUNK_STORES,
):
    """Yield (store ids of the chunk, samples (n_samples, chunk stores, days), the chunk's window
    covariates) chunk by chunk."""
    rows_fit = _fit_rows(result, store_ids)
    rows_cube = cube.store_rows(store_ids)
    prior = _prior_placeholder(result)
    latent_key, _ = jax.random.split(jax.random.PRNGKey(seed))
    chunk_stores = min(chunk_stores, len(rows_cube))
    # Window lengths are padded to a bucket too, so a new horizon rarely compiles again.
    padded_dates = dates[0] + np.arange(bucket(len(dates), minimum=8))
    shape = (n_samples, chunk_stores, len(padded_dates))

    def dispatched_laws():
        """Per chunk: its store ids, its observation law (still computing when yielded) and its
        covariates on the real stores and dates."""
        for start in range(0, len(rows_cube), chunk_stores):
            # Every chunk has the same shape (the last one padded by repeating a store): one program.
            part = np.minimum(np.arange(start, start + chunk_stores), len(rows_cube) - 1)
            n_real = min(chunk_stores, len(rows_cube) - start)
            covariates = _window_covariates(cube, rows_cube[part], padded_dates, scenario)
            design = encode(cube.spec, covariates)
            # Random numbers are keyed by store id, not by chunk: any chunking gives the same draws.
            latents = _draw_latents_async(result, latent_key, n_samples, rows_fit[part])
            yield (
                np.asarray(store_ids)[part[:n_real]],
                _observation_law(latents, design.index, design.value, prior),
                covariates.take_stores(np.arange(n_real)).take_days(np.arange(len(dates))),
            )

    shock_sd = result.day_shock_sd
    shocks = day_shocks(shock_sd, dates, n_samples, seed)

    def draw(ids, law, covariates):
        window = (slice(None), slice(0, len(ids)), slice(0, len(dates)))
        log_mean, log_dispersion = (np.asarray(a).reshape(shape)[window] for a in law)
        return ids, _draw_y(log_mean, log_dispersion, seed, ids, shocks, shock_sd), covariates

    # One chunk ahead: JAX computes the next chunk's law while NumPy draws this chunk's sales.
    pending = None
    for chunk in dispatched_laws():
        if pending is not None:
            yield draw(*pending)
        pending = chunk
    yield draw(*pending)


def _fit_rows(result: FitResult, store_ids) -> np.ndarray:
    ids = np.asarray(store_ids, dtype=np.int64)
    rows = np.searchsorted(result.store_ids, ids)
    rows = np.clip(rows, 0, len(result.store_ids) - 1)
    missing = ids[result.store_ids[rows] != ids]
    if missing.size:
        raise DataError(
            f"store(s) {missing[:10].tolist()} are not in this fit; fit them first (or treat them as new stores)"
        )
    return rows


def _dates(first, last) -> np.ndarray:
    first, last = np.datetime64(first, "D"), np.datetime64(last, "D")
    if last < first:
        raise DataError(f"the forecast window ends ({last}) before it starts ({first})")
    return np.arange(first, last + np.timedelta64(1, "D"))


def rmspe_optimal_point(samples: np.ndarray, axis: int = 0) -> np.ndarray:
    """The point f minimising expected squared relative error E[((y - f) / y)^2 | y > 0]:
    f = E[1/y] / E[1/y^2] over the positive samples (0 where none is positive).

    Relative errors punish over-forecasts of small sales hardest, so this sits below the median;
    it is the Bayes decision for RMSPE, as the mean is for RMSE and the median for MAE.
    """
    positive = samples > 0
    inverse = np.where(positive, 1.0 / np.where(positive, samples, 1.0), 0.0)
    first, second = inverse.sum(axis), (inverse**2).sum(axis)
    return np.where(second > 0, first / np.where(second > 0, second, 1.0), 0.0)


def _quantiles_of_sorted(ordered: np.ndarray, qs) -> list:
    """np.percentile's default (linear) interpolation, on samples already sorted along axis 1."""
    m = ordered.shape[1]
    out = []
    for q in qs:
        position = q / 100 * (m - 1)
        below = int(np.floor(position))
        above = min(below + 1, m - 1)
        weight = position - below
        out.append(ordered[:, below] * (1 - weight) + ordered[:, above] * weight)
    return out


def summarise_cells(samples_by_cell: np.ndarray, levels=LEVELS) -> dict:
    """Per-cell point and interval summaries of (cells, n_samples) draws, and the sorted draws.

    One sort serves every quantile and the CRPS (`metrics.crps_from_samples(..., presorted=True)`).
    """
    ordered = np.sort(samples_by_cell, axis=1)
    qs = sorted({50.0} | {50 - l / 2 for l in levels} | {50 + l / 2 for l in levels})
    at = dict(zip(qs, _quantiles_of_sorted(ordered, qs)))
    out = {"point": ordered.mean(1), "median": at[50.0], "point_rmspe": rmspe_optimal_point(ordered, axis=1)}
    for level in levels:
        out[f"lo_{level}"], out[f"hi_{level}"] = at[50 - level / 2], at[50 + level / 2]
    return out, ordered


def summarise(samples: np.ndarray, levels=LEVELS) -> dict:
    """Point and interval summaries over the leading sample axis, in the samples' other shape."""
    shape = samples.shape[1:]
    stats, _ = summarise_cells(samples.reshape(samples.shape[0], -1).T, levels)
    return {k: v.reshape(shape) for k, v in stats.items()}


def forecast(
    result: FitResult,
    cube: SalesCube,
    store_ids=None,
    first=None,
    last=None,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    chunk_stores: int = CHUNK_STORES,
) -> pd.DataFrame:
    """Tidy per-store-day forecast over [first, last] (defaults: the cube's days).

    Closed days get a forecast of 0 (a closed store sells nothing); `y` holds the actual where the
    cube observed it, and `crps` is scored against it. For more stores than memory should hold,
    stream the same frames to a file with `stream.forecast_to_parquet`.
    """
    frames = list(
        forecast_chunks(
            result,
            cube,
            store_ids,
            first,
            last,
            n_samples=n_samples,
            seed=seed,
            scenario=scenario,
            levels=levels,
            chunk_stores=chunk_stores,
        )
    )
    return pd.concat(frames, ignore_index=True)


def forecast_chunks(
    result: FitResult,
    cube: SalesCube,
    store_ids=None,
    first=None,
    last=None,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    chunk_stores: int = CHUNK_STORES,
):
    """`forecast`'s frame, one chunk of stores at a time (memory bounded by the chunk)."""
    store_ids = result.store_ids if store_ids is None else np.asarray(store_ids, dtype=np.int64)
    dates = _dates(first if first is not None else cube.dates[0], last if last is not None else cube.dates[-1])
    for draws in _chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, chunk_stores):
        yield _cell_frame(draws, dates, levels)


def forecast_with_total(
    result: FitResult, cube: SalesCube, store_ids, first, last, *, n_samples: int = 500, seed: int = 0, levels=LEVELS
) -> tuple:
    """(`forecast`'s frame, `forecast_total(observed_only=True)`'s frame) from one set of draws."""
    dates = _dates(first, last)
    total = _DailyTotal(n_samples, dates, observed_only=True)
    frames = []
    for draws in _chunk_draws(
        result, cube, np.asarray(store_ids, dtype=np.int64), dates, n_samples, seed, Scenario(), CHUNK_STORES
    ):
        frames.append(_cell_frame(draws, dates, levels))
        total.add(draws)
    return pd.concat(frames, ignore_index=True), total.frame(levels)


class _Draws(NamedTuple):
    """One chunk of stores over the window: its draws (closed days 0) and what the cube knows."""

    ids: np.ndarray
    samples: np.ndarray  # (n_samples, stores, days)
    actual: np.ndarray  # (stores, days), NaN where not observed
    status: np.ndarray
    expected: np.ndarray  # expected closed (after the data, on a usual closing weekday)
    covariates: object


def _chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, chunk_stores):
    for ids, samples, cov in sample_forecast(
        result, cube, store_ids, dates, n_samples=n_samples, seed=seed, scenario=scenario, chunk_stores=chunk_stores
    ):
        actual, status, expected = _actuals(cube, ids, dates)
        yield _Draws(ids, np.where(status == CLOSED, 0.0, samples), actual, status, expected, cov)


def _cell_frame(draws: _Draws, dates: np.ndarray, levels) -> pd.DataFrame:
    ids, samples, actual, status, expected, cov = draws
    stats, ordered = summarise_cells(samples.reshape(samples.shape[0], -1).T, levels)
    frame = pd.DataFrame(
        {
            "store": np.repeat(ids, len(dates)),
            "date": np.tile(dates, len(ids)),
            "method": METHOD,
            "y": actual.ravel(),
            **{k: v.ravel() for k, v in stats.items()},
            "crps": crps_from_samples(actual.ravel(), ordered, presorted=True),
            "open": (status != CLOSED).ravel(),
            "known": (status != MISSING).ravel() & ~expected.ravel(),
            "expected_closed": expected.ravel(),
            "promo": cov.promo.ravel().astype(bool),
            "state_holiday": cov.state_holiday.ravel() > 0,
        }
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


class _DailyTotal:
    """The daily sum of sampled store paths (not of quantiles), added chunk by chunk.

    observed_only: sum only the store-days whose sales were observed, so that the forecast total
    and the actual total cover the same stores (scoring a backtest's total); otherwise every
    store-day not known to be closed counts."""

    def __init__(self, n_samples: int, dates: np.ndarray, observed_only: bool):
        self.dates, self.observed_only = dates, observed_only
        self.total = np.zeros((n_samples, len(dates)))
        self.actual = np.zeros(len(dates))

    def add(self, draws: _Draws) -> None:
        counted = ~np.isnan(draws.actual) if self.observed_only else draws.status != CLOSED
        self.total += np.where(counted, draws.samples, 0.0).sum(1)
        self.actual += np.nansum(draws.actual, 0)

    def frame(self, levels) -> pd.DataFrame:
        return pd.DataFrame({"date": pd.to_datetime(self.dates), "y": self.actual, **summarise(self.total, levels)})


def usual_closing_days(cube: SalesCube, rows: np.ndarray) -> np.ndarray:
    """(stores, 7) bool: weekdays on which a store was closed in most of its last recorded weeks."""
    weekday = weekday_of(cube.dates)
    status = cube.status[rows]
    out = np.zeros((len(rows), 7), bool)
    for day in range(7):
        recent = status[:, weekday == day]
        known = recent != MISSING
        # the last CLOSED_WEEKS recorded occurrences of this weekday, per store
        rank = np.cumsum(known[:, ::-1], axis=1)[:, ::-1]
        window = known & (rank <= CLOSED_WEEKS)
        closed = ((recent == CLOSED) & window).sum(1)
        out[:, day] = (window.sum(1) > 0) & (closed >= CLOSED_SHARE * np.maximum(window.sum(1), 1))
    return out


def _actuals(cube: SalesCube, ids, dates):
    """Observed sales (NaN elsewhere) and status on the window, for stores of the cube.

    Days after the data on a store's usual closing weekday count as CLOSED (expected): a store
    shut on Sundays for years gets no Sunday forecast from a weekday effect it never showed.
    """
    rows = cube.store_rows(ids)
    col = (dates - cube.dates[0]).astype(np.int64)
    inside = (col >= 0) & (col < cube.n_days)
    safe = np.clip(col, 0, cube.n_days - 1)
    observed = cube.observed[rows][:, safe] & inside[None, :]
    actual = np.where(observed, cube.sales[rows][:, safe], np.nan)
    status = np.where(inside[None, :], cube.status[rows][:, safe], MISSING)
    after = col >= cube.n_days
    expected = after[None, :] & usual_closing_days(cube, rows)[:, weekday_of(dates)]
    return actual, np.where(expected, CLOSED, status), expected


def forecast_total(
    result: FitResult,
    cube: SalesCube,
    store_ids,
    first,
    last,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    observed_only: bool = False,
) -> pd.DataFrame:
    """Daily sum over the stores with an interval from summed samples (not summed quantiles);
    observed_only as in `_DailyTotal`."""
    dates = _dates(first, last)
    total = _DailyTotal(n_samples, dates, observed_only)
    for draws in _chunk_draws(result, cube, store_ids, dates, n_samples, seed, scenario, CHUNK_STORES):
        total.add(draws)
    return total.frame(levels)


def store_day_samples(
    result: FitResult,
    cube: SalesCube,
    store_id: int,
    date,
    *,
    n_samples: int = 2000,
    seed: int = 0,
    scenario: Scenario = Scenario(),
) -> np.ndarray:
    """Posterior predictive samples of one store-day, for its density."""
    dates = _dates(date, date)
    _, samples, _ = next(
        sample_forecast(result, cube, [store_id], dates, n_samples=n_samples, seed=seed, scenario=scenario)
    )
    return samples[:, 0, 0]
