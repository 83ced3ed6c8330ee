"""Cached access to data: cubes as shared resources, small derived tables as cached data.

Sources are frozen dataclasses, but a folder or a file can change under the same path, so the
cache key is the source's repr plus the size and modification time of the files it reads.
Cubes are large and never modified, so they are cached as resources (one copy shared by all
sessions, no pickling; the raw tables are dropped once the cube is built); the per-store table,
the status grid and store histories are small and are cached as data keyed by the cube's content
fingerprint.

The numerical stack (JAX, NumPyro) is imported only where a fit, a forecast or an effect needs it,
and ahead of that by `warm_up` in a background thread once the first page is drawn: the Data page
of a fresh server never waits for it.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.data.cube import CLOSED, MISSING, SalesCube
from bhm_core.data.sources import CsvSource, KaggleDirSource, load_dataset
from bhm_core.errors import BhmError

from . import state
from .charts import history_frame, status_grid
from .jobs import ResultCache

UPLOAD_DIR = Path(tempfile.gettempdir()) / "bhm_uploads"


def _file_stamp(source) -> str:
    if isinstance(source, KaggleDirSource):
        folder = Path(source.path).expanduser()
        paths = [folder / f"{stem}{ext}" for stem in ("train", "store") for ext in (".csv", ".csv.gz")]
    elif isinstance(source, CsvSource):
        paths = [Path(source.path)]
    else:
        return ""
    stamps = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        stamps.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return ",".join(stamps)


def source_key(source) -> str:
    return f"{source!r}|{_file_stamp(source)}"


@st.cache_resource(max_entries=3, show_spinner="Reading and checking the data…")
def _cube(key: str, _source) -> SalesCube:
    return load_dataset(_source).cube()


def load_cube(source) -> SalesCube:
    """Raises BhmError (the message is for the user)."""
    return _cube(source_key(source), source)


def try_source(source) -> bool:
    """Load a newly chosen source; on success it becomes the data in use, on failure the message
    is shown and the previous data stays in use."""
    try:
        load_cube(source)
    except BhmError as exc:
        st.error(str(exc))
        return False
    state.set_source(source)
    return True


def current_cube() -> SalesCube | None:
    """The cube of the data in use, or None after showing why it cannot be loaded."""
    source = state.current_source()
    try:
        return load_cube(source)
    except BhmError as exc:
        st.error(f"{source.label} cannot be loaded any more: {exc}")
        st.info("Choose the data again on the Data page.")
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def store_table(fingerprint: str, _cube: SalesCube) -> pd.DataFrame:
    """One row per store: attributes plus mean sales over observed days and day counts."""
    observed = _cube.observed
    n_obs = observed.sum(axis=1)
    total = _cube.sales.sum(axis=1, dtype=np.float64)
    mean = np.divide(total, n_obs, out=np.full(len(n_obs), np.nan), where=n_obs > 0)
    table = _cube.stores.loc[:, ["Store", "StoreType", "Assortment", "Promo2"]].copy()
    table["Promo2"] = table["Promo2"].astype(bool)
    table["MeanSales"] = mean.round(0)
    table["ObservedDays"] = n_obs
    table["ClosedDays"] = (_cube.status == CLOSED).sum(axis=1)
    table["NoRowDays"] = (_cube.status == MISSING).sum(axis=1)
    return table


@st.cache_data(max_entries=8, show_spinner=False)
def cached_status_grid(fingerprint: str, _cube: SalesCube):
    return status_grid(_cube)


@st.cache_data(max_entries=16, show_spinner=False)
def store_history(fingerprint: str, _cube: SalesCube, store_ids: tuple, weekly: bool) -> pd.DataFrame:
    """Tidy (Store, Date, Sales) over observed days; a NaN row breaks the line over long gaps."""
    return history_frame(_cube, list(store_ids), weekly)


def save_upload(uploaded) -> Path:
    """Write an uploaded file once (content-addressed) and return its path; reruns reuse it."""
    remembered = st.session_state.get(state.UPLOAD)
    if remembered and remembered[0] == uploaded.file_id and Path(remembered[1]).is_file():
        return Path(remembered[1])
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(uploaded.name).name) or "upload.csv"
    path = UPLOAD_DIR / digest / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    st.session_state[state.UPLOAD] = (uploaded.file_id, str(path))
    return path


# ----------------------------------------------------------------------------------------------
# Fits and what is derived from them. A fit key names its content (data, priors, settings,
# versions), so results cached under it are shared by all sessions; partial fits carry their own
# suffixed keys.

HEAVY_MODULES = (
    "bhm_core.inference.fit",
    "bhm_core.forecast.predict",
    "bhm_core.artifacts",
    "bhm_core.forecast.effects",
    "bhm_core.forecast.prior_check",
    "bhm_core.evaluation.backtest",
)


WARM_UP_DELAY = 2.0  # seconds: let the first page's messages reach the browser before importing


def _import_heavy(delay: float) -> None:
    import importlib
    import time

    time.sleep(delay)  # imports hold the GIL: started at once, they slow the server's sending
    for name in HEAVY_MODULES:  # in dependency order: the engine first
        importlib.import_module(name)
    from bhm_core.inference.programs import enable_compilation_cache

    enable_compilation_cache()


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Import the numerical stack and turn on JAX's persistent compilation cache in a background
    thread, once per process (app.py calls it after the page has run)."""
    thread = threading.Thread(target=_import_heavy, args=(WARM_UP_DELAY,), daemon=True, name="bhm-warm-up")
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def compilation_cache() -> str:
    """Turn on JAX's persistent compilation cache, once per process (before anything compiles)."""
    from bhm_core.inference.programs import enable_compilation_cache

    return str(enable_compilation_cache())


# The library's forecast functions, imported on first use (tests count calls through these names).
def forecast(*args, **kwargs):
    from bhm_core.forecast.predict import forecast as run

    return run(*args, **kwargs)


def forecast_total(*args, **kwargs):
    from bhm_core.forecast.predict import forecast_total as run

    return run(*args, **kwargs)


def store_day_samples(*args, **kwargs):
    from bhm_core.forecast.predict import store_day_samples as run

    return run(*args, **kwargs)


@st.cache_resource(show_spinner=False)
def evaluations() -> ResultCache:
    """Backtests and cold-start trials of this process, keyed by everything that decides them
    (ui.evaluating.*_key): a page that comes back, or another session asking the same, reuses them."""
    return ResultCache(max_entries=16)


@st.cache_resource(max_entries=4, show_spinner=False)
def _fit_cube(fingerprint: str, store_ids: tuple, _cube: SalesCube) -> SalesCube:
    return _cube.select_stores(list(store_ids))


def fit_cube(cube: SalesCube, store_ids) -> SalesCube:
    """The cube of the given stores (what a fit on them sees). Raises DataError for unknown ids."""
    return _fit_cube(cube.fingerprint, tuple(int(i) for i in store_ids), cube)


@st.cache_resource(max_entries=32, show_spinner=False)
def saved_fit(root: str, key: str):
    """A saved fit, loaded once per process. Raises ArtifactError (not cached) when unusable."""
    from bhm_core.artifacts import FitStore

    return FitStore(root).load(key)


@st.cache_data(max_entries=512, show_spinner=False)
def fit_usability(fingerprint: str, root: str, key: str, stamp: str, data_fingerprint: str, _cube: SalesCube) -> str:
    """ "yes" when the saved fit was made on these data (on its stores of this cube), else "other
    data" or "unreadable". Reads only the fit's store ids (not its arrays) and hashes that subset
    of the cube outside the fit-cube cache, so a long history never evicts the cubes in use.
    Cached per cube and artifact (stamp: the record's checksum): the history table asks for
    every saved fit on every rerun."""
    from bhm_core.artifacts import FitStore

    try:
        ids = FitStore(root).store_ids(key)
    except BhmError:
        return "unreadable"
    try:
        sub = _cube.select_stores(ids)
    except BhmError:  # stores this data does not have
        return "other data"
    return "yes" if sub.fingerprint == data_fingerprint else "other data"


@st.cache_resource(max_entries=256, show_spinner=False)
def prior_figure(mu_loc: float, mu_scale: float, sigma_scale: float, mean_title: str, spread_title: str):
    """The density panels of one prior. Model & fit draws seven on every rerun and a Plotly figure
    takes tens of ms to build, so each is built once per process and values (never mutated)."""
    from bhm_core.forecast import prior_check

    from .charts_fit import prior_figure as build

    return build(
        prior_check.mean_curve(mu_loc, mu_scale), prior_check.spread_curve(sigma_scale), mean_title, spread_title
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def figure(key: str, _build):
    """A figure built once per key, where the key names everything it shows (fit key, request,
    window, theme-independent options): rebuilding a many-panel Plotly figure on every rerun costs
    more than the rest of the page. Figures are shared read-only."""
    return _build()


@st.cache_data(max_entries=32, show_spinner=False)
def prior_predictive(fingerprint: str, priors_key: str, _cube: SalesCube, _priors):
    from bhm_core.forecast import prior_check

    return prior_check.prior_predictive(_cube, _priors), prior_check.observed_log10(_cube)


def _split(first, last, end, promo_future: bool):
    """(first, last, scenario, seed) per call: days inside the data as recorded, later days under
    the scenario, each part its own draw, so the history part stays the same whatever the horizon
    or the what-if (Scenario(1) over the whole window would also rewrite recorded days)."""
    from bhm_core.forecast.sampling import Scenario

    future = Scenario(1) if promo_future else Scenario()
    if last <= end:
        return [(first, last, Scenario(), 0)]
    if first > end:
        return [(first, last, future, 1)]
    return [(first, end, Scenario(), 0), (end + 1, last, future, 1)]


@st.cache_data(max_entries=64, show_spinner="Sampling the forecast…")
def store_forecast(
    fit_key: str,
    stores: tuple,
    first,
    last,
    promo_future: bool,
    n_samples: int,
    _result,
    _cube: SalesCube,
    chunk_stores: int = 8,
) -> pd.DataFrame:
    """Per-store forecast over [first, last] with promo/holiday flags and expected closures (days
    after the data on a store's usual closing weekday: open False, forecast 0). Days after the
    data have no promo unless promo_future (then Mon-Fri). chunk_stores fixed: one compiled
    program whatever the number of stores shown."""
    first, last = np.datetime64(first, "D"), np.datetime64(last, "D")
    parts = [
        forecast(
            _result,
            _cube,
            list(stores),
            a,
            b,
            n_samples=n_samples,
            seed=seed,
            scenario=scenario,
            chunk_stores=chunk_stores,
        )
        for a, b, scenario, seed in _split(first, last, _cube.dates[-1], promo_future)
    ]
    return pd.concat(parts, ignore_index=True).sort_values(["store", "date"], ignore_index=True)


@st.cache_data(max_entries=32, show_spinner="Summing the forecast over the stores…")
def total_forecast(fit_key: str, first, last, promo_future: bool, n_samples: int, _result, _cube) -> pd.DataFrame:
    """Daily sum over the fit's stores; the actual total only inside the data (NaN after)."""
    first, last = np.datetime64(first, "D"), np.datetime64(last, "D")
    parts = [
        forecast_total(_result, _cube, _result.store_ids, a, b, n_samples=n_samples, seed=seed, scenario=scenario)
        for a, b, scenario, seed in _split(first, last, _cube.dates[-1], promo_future)
    ]
    total = pd.concat(parts, ignore_index=True)
    total.loc[total["date"] > pd.Timestamp(_cube.dates[-1]), "y"] = np.nan
    return total


@st.cache_data(max_entries=64, show_spinner=False)
def day_samples(fit_key: str, store: int, date, promo_future: bool, n_samples: int, _result, _cube) -> np.ndarray:
    from bhm_core.forecast.sampling import Scenario

    day = np.datetime64(date, "D")
    scenario = Scenario(1) if promo_future and day > _cube.dates[-1] else Scenario()
    return store_day_samples(_result, _cube, store, day, n_samples=n_samples, scenario=scenario)


@st.cache_data(max_entries=16, show_spinner="Summarising the effects…")
def effect_tables(fit_key: str, seen: tuple, _result, _cube: SalesCube | None = None) -> dict:
    """Global effect samples and per-store effects of a fit; with the fit's cube also shrinkage
    and observed days per effect. seen: per feature, whether the data have it (see
    effects.contrasts), so that two fits compared use the same references."""
    from bhm_core.forecast import effects

    items = effects.contrasts(_result.feature_names, _result.feature_groups, seen)
    latents = effects.latent_samples(_result)
    out = {
        "global": effects.global_effects(_result, items, latents),
        "stores": effects.store_effects(_result, items, latents),
    }
    if _cube is not None:
        out["shrinkage"] = effects.shrinkage(_result, _cube, items, latents)
        days = effects.feature_days(_cube)
        out["days"] = pd.Series({c.label: int(days[c.feature]) for c in items})
    return out


@st.cache_data(max_entries=8, show_spinner=False)
def seen_features(fingerprint: str, _cube: SalesCube) -> tuple:
    from bhm_core.forecast import effects

    return tuple(bool(d > 0) for d in effects.feature_days(_cube))
