"""Posterior predictive draws from a fit, a chunk of stores at a time so memory stays flat.

Latents come from the fitted guide; each draw's law of every store-day comes from the model's own
`store_parameters` and `grid_laws`, and the fit's likelihood draws the sales on the host, keyed by
store id (so chunking never changes a number). Every store of a day shares that day's chain-wide
shock (`day_shocks`), whose sd the fit measured (inference.shocks).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bhm_core.data.cube import SalesCube
from bhm_core.data.features import encode
from bhm_core.data.future import FIELDS, UNKNOWN, FutureCalendar
from bhm_core.errors import DataError
from bhm_core.inference.state import FitResult
from bhm_core.model.guide import basis_name, draw_order, guide_draw, guide_sites
from bhm_core.model.hierarchy import dispersion_slots, grid_laws, store_parameters

CHUNK_STORES = 64  # stores drawn together: memory is one chunk's samples
SHOCK_STREAM = 7919  # generator key of the day shocks, apart from the stores' (seed, id)
COEFFICIENT_SHOCK_STREAM = 7907  # the latents' key folded with this: the chain coefficients' shared error
MIN_DAYS = 8  # the shortest padded window
DAY_NUMBER_OFFSET = 10**6  # dates as days since 1970 made non-negative for the generator key


@dataclass(frozen=True)
class Scenario:
    """What to assume for days the data do not cover.

    promo: None = as recorded (days past the data: as the calendar says, else no promo), 0 = promo
    off, 1 = promo on Mon-Fri, on every forecast day. calendar: what is known about days after
    the data (future.FutureCalendar): open days, promo, holidays per store-day; unknown cells keep
    the defaults (no promo, no holiday, closed on the store's usual closing weekdays).
    """

    promo: int | None = None
    calendar: FutureCalendar | None = None

    def ahead(self, store_ids, dates) -> tuple[dict, np.ndarray]:
        """The calendar's values and sources for these stores and dates (all UNKNOWN without one)."""
        if self.calendar is None:
            shape = (len(store_ids), len(dates))
            return {f: np.full(shape, UNKNOWN, np.int8) for f in FIELDS}, np.full(shape, UNKNOWN, np.int8)
        return self.calendar.lookup(store_ids, dates)


def window_covariates(cube: SalesCube, rows: np.ndarray, dates: np.ndarray, scenario: Scenario):
    """Covariates of the given stores on the given dates: the data's inside the data; after it, the
    scenario's calendar where it knows a day, else the defaults (no promo, no holiday)."""
    base = cube.covariates.take_stores(rows)
    col = (dates - cube.dates[0]).astype(np.int64)
    known = (col >= 0) & (col < cube.n_days)
    safe = np.clip(col, 0, cube.n_days - 1)
    ahead, _ = scenario.ahead(cube.store_ids[rows], dates)

    def per_cell(grid, name):
        planned = (ahead[name] != UNKNOWN) & (col >= cube.n_days)[None, :]
        default = np.where(planned, ahead[name], 0)
        return np.where(known[None, :], grid[:, safe], default).astype(grid.dtype)

    promo = per_cell(base.promo, "promo")
    if scenario.promo is not None:
        weekday = ((dates.astype(np.int64) + 3) % 7)[None, :]
        promo = np.broadcast_to((weekday < 5) & (scenario.promo == 1), promo.shape).astype(np.int8)
    return replace(
        base,
        dates=dates,
        promo=promo,
        state_holiday=per_cell(base.state_holiday, "state_holiday"),
        school_holiday=per_cell(base.school_holiday, "school_holiday"),
        closed=_closed_ahead(base, cube.store_ids[rows], dates, scenario),
    )


def _closed_ahead(base, store_ids, dates, scenario: Scenario) -> np.ndarray:
    """The stores' closed calendar (Covariates.closed) continued past the data with the days the
    scenario's calendar says are closed, so the features around closures see planned ones too."""
    grid_last = base.grid_first + np.timedelta64(base.closed.shape[1] - 1, "D")
    if scenario.calendar is None or dates[-1] <= grid_last:
        return base.closed
    more = np.arange(grid_last + np.timedelta64(1, "D"), dates[-1] + np.timedelta64(1, "D"))
    ahead, _ = scenario.calendar.lookup(store_ids, more)
    return np.concatenate([base.closed, ahead["open"] == 0], axis=1)


def draw_latents(key, result: FitResult, n_samples: int, rows: np.ndarray) -> dict:
    """Latent samples from the guide; local sites only for the given store rows.

    A local site's draws for a store depend only on the key and the store's id, the globals' only
    on the key: a store gets the same numbers whichever other stores are drawn with it, so chunked
    and unchunked forecasts agree exactly, and sample n uses the same globals for every store.
    """
    return {name: np.asarray(draws) for name, draws in _draw_latents_async(key, result, n_samples, rows).items()}


def _draw_latents_async(key, result: FitResult, n_samples: int, rows: np.ndarray) -> dict:
    """`draw_latents` as JAX arrays still being computed (JAX dispatches asynchronously)."""
    rows = np.asarray(rows)
    ids = np.asarray(result.store_ids)[rows].astype(np.uint32)  # staged with the call: no program of its own
    local = {s.name for s in guide_sites() if s.local}
    local |= {basis_name(name) for name in local}
    # The requested stores' rows are taken on the host: only they travel to the device, not every
    # store's whitening basis (hundreds of MB for a chain of a thousand stores).
    params = {
        name: type(site)(*(np.asarray(a)[rows] for a in site)) if name in local else site
        for name, site in result.params.items()
    }
    return _latents_program(key, params, ids, n_samples, result.coefficient_shock_sd)


@jax.jit
def _latent_key(seed):
    """The latents' key of a forecast's seed, as one program (eagerly, seeding and splitting
    would dispatch four, each traced and lowered in a fresh process)."""
    return jax.random.split(jax.random.PRNGKey(seed))[0]


@partial(jax.jit, static_argnums=(3,))
def _latents_program(key, params: dict, ids, n_samples: int, coefficient_shock_sd) -> dict:
    """The latent draw as one compiled program: a request pays one dispatch, not one per site.

    Each draw's chain coefficients also carry the error the training days' chain-wide shocks left
    in them (N(0, coefficient_shock_sd^2) per feature, inference.shocks), which moves every store's
    coefficients alike: the guide cannot hold it, as the model sees each store-day's noise as its own."""
    out = {}
    index = {s.name: i for i, s in enumerate(s for s in guide_sites() if s.name in params)}
    for spec in draw_order(params):  # a whitened site after the hyper-parameters it reads
        site_key = jax.random.fold_in(key, index[spec.name])
        site = params[spec.name]
        basis = params.get(basis_name(spec.name)) if spec.whitened else None
        if spec.local:
            eps = _per_store_normal(site_key, ids, n_samples, tuple(np.shape(site.loc)[1:]))
        else:
            eps = jax.random.normal(site_key, (n_samples, *np.shape(site.loc)))
        _, _, out[spec.name] = guide_draw(spec, site, eps, basis, out)
    shared_error = jax.random.normal(jax.random.fold_in(key, COEFFICIENT_SHOCK_STREAM), out["theta_mu"].shape)
    out["theta_mu"] = out["theta_mu"] + coefficient_shock_sd * shared_error
    return out


@partial(jax.jit, static_argnums=(2, 3))
def _per_store_normal(key, ids, n_samples: int, shape: tuple):
    """(n_samples, stores, *shape) standard normals, store i's from fold_in(key, id_i) alone."""

    def draw(i):
        return jax.random.normal(jax.random.fold_in(key, i), (n_samples, *shape))

    return jnp.moveaxis(jax.vmap(draw)(ids), 0, 1)


def _cell_laws(latents, design):
    """(n_samples, stores, days) eta and dispersion of every store-day under each posterior draw."""
    return _design_laws(latents, design.index, design.value, dispersion_slots(design.index[0, 0], design.groups))


@jax.jit
def _design_laws(latents, design_index, design_value, slots_of_dispersion):
    return grid_laws(store_parameters(latents), design_index.astype(jnp.int32), design_value, slots_of_dispersion)


def day_shocks(shock_sd: float, dates: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """(n_samples, days) chain-wide log shocks N(0, shock_sd^2), one per date and sample, shared by
    every store; date j's from a generator of (seed, date) alone, so any window or chunk agrees."""
    out = np.zeros((n_samples, len(dates)))
    if shock_sd > 0:
        for j, day in enumerate(dates.astype("datetime64[D]").astype(np.int64)):
            rng = np.random.default_rng([seed, SHOCK_STREAM, int(day) + DAY_NUMBER_OFFSET])
            out[:, j] = shock_sd * rng.standard_normal(n_samples)
    return out


def draw_sales(
    result: FitResult, eta: np.ndarray, dispersion: np.ndarray, seed: int, store_ids, shocks: np.ndarray
) -> np.ndarray:
    """(n_samples, stores, days) draws of the fit's likelihood, store i's from a generator of
    (seed, id_i) alone, every store of a day carrying that day's shock."""
    likelihood, shock_sd = result.likelihood, result.day_shock_sd
    out = np.empty(eta.shape)
    for i, store in enumerate(store_ids):
        rng = np.random.default_rng([seed, int(store)])
        out[:, i] = likelihood.sample(rng, eta[:, i], dispersion[:, i], shocks, shock_sd)
    return out


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
    expected: bool = False,
):
    """Yield (store ids of the chunk, samples (n_samples, chunk stores, days), the chunk's window
    covariates) chunk by chunk. expected: each posterior draw's level exp(eta) instead of a sales
    draw (the expected sales under the Gamma-Poisson; under the Student-t law on log sales, whose
    heavy tails leave no mean, the median of 1 + sales), for comparisons of scenarios on the same
    draws, where the day-to-day noise of a sales draw would only blur the difference."""
    rows_fit = fit_rows(result, store_ids)
    rows_cube = cube.store_rows(store_ids)
    latent_key = _latent_key(np.int32(seed))
    # Chunks of a power of two stores (the last padded) and windows padded to a power of two days:
    # a handful of compiled programs (`program_shapes`) serve every request, so a server can
    # compile them all before its first request.
    chunk_stores = min(chunk_stores, power_of_two(len(rows_cube)))
    padded_dates = dates[0] + np.arange(max(MIN_DAYS, power_of_two(len(dates))))
    shape = (n_samples, chunk_stores, len(padded_dates))

    def dispatched_laws():
        """Per chunk: its store ids, its laws (still computing when yielded) and its covariates on
        the real stores and dates."""
        for start in range(0, len(rows_cube), chunk_stores):
            # Every chunk has the same shape (the last one padded by repeating a store): one program.
            part = np.minimum(np.arange(start, start + chunk_stores), len(rows_cube) - 1)
            n_real = min(chunk_stores, len(rows_cube) - start)
            covariates = window_covariates(cube, rows_cube[part], padded_dates, scenario)
            design = encode(cube.spec, covariates)
            # Random numbers are keyed by store id, not by chunk: any chunking gives the same draws.
            latents = _draw_latents_async(latent_key, result, n_samples, rows_fit[part])
            yield (
                np.asarray(store_ids)[part[:n_real]],
                _cell_laws(latents, design),
                covariates.take_stores(np.arange(n_real)).take_days(np.arange(len(dates))),
            )

    shocks = day_shocks(result.day_shock_sd, dates, n_samples, seed)

    def draw(ids, laws, covariates):
        window = (slice(None), slice(0, len(ids)), slice(0, len(dates)))
        eta, dispersion = (np.asarray(a).reshape(shape)[window] for a in laws)
        if expected:
            return ids, np.exp(np.clip(eta, -50.0, 50.0)), covariates
        return ids, draw_sales(result, eta, dispersion, seed, ids, shocks), covariates

    # One chunk ahead: JAX computes the next chunk's laws while NumPy draws this chunk's sales.
    pending = None
    for chunk in dispatched_laws():
        if pending is not None:
            yield draw(*pending)
        pending = chunk
    yield draw(*pending)


def power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()


def program_shapes(max_days: int, chunk_stores: int = CHUNK_STORES) -> list[tuple[int, int]]:
    """Every (stores per chunk, padded days) a forecast of at most `max_days` days compiles."""
    stores = [1 << i for i in range(power_of_two(chunk_stores).bit_length())]
    days = [d for d in (1 << i for i in range(MIN_DAYS.bit_length() - 1, 20)) if d < 2 * max_days]
    return [(s, d) for s in stores for d in days]


def compile_programs(
    result: FitResult, cube: SalesCube, n_samples: int, max_days: int, chunk_stores: int = CHUNK_STORES
) -> int:
    """Run every program a forecast of `n_samples` draws, at most `max_days` days and chunks of at
    most `chunk_stores` stores uses, once, so that no request pays for compiling one; returns how
    many shapes it ran."""
    key, shapes = jax.random.PRNGKey(0), program_shapes(max_days, chunk_stores)
    for n_stores in sorted({s for s, _ in shapes}):
        rows = np.zeros(n_stores, np.int64)
        latents = _draw_latents_async(key, result, n_samples, rows)
        for days in (d for s, d in shapes if s == n_stores):
            dates = cube.dates[-1] + np.arange(1, days + 1)
            design = encode(cube.spec, window_covariates(cube, rows, dates, Scenario()))
            jax.block_until_ready(_cell_laws(latents, design))
    return len(shapes)


def fit_rows(result: FitResult, store_ids) -> np.ndarray:
    ids = np.asarray(store_ids, dtype=np.int64)
    rows = np.searchsorted(result.store_ids, ids)
    rows = np.clip(rows, 0, len(result.store_ids) - 1)
    missing = ids[result.store_ids[rows] != ids]
    if missing.size:
        raise DataError(
            f"store(s) {missing[:10].tolist()} are not in this fit; fit them first (or treat them as new stores)"
        )
    return rows


def forecast_dates(first, last) -> np.ndarray:
    first, last = np.datetime64(first, "D"), np.datetime64(last, "D")
    if last < first:
        raise DataError(f"the forecast window ends ({last}) before it starts ({first})")
    return np.arange(first, last + np.timedelta64(1, "D"))
