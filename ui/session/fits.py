"""The current fit in session state, and the ways it changes: a new fit (a background job run by
the one lifecycle of ui.session.lifecycle), a cached one, a reopened one, a partial one the user
accepts; plus listing, relabelling, deleting and exporting saved fits.

Pages call `current()` to get the fit they show; it first collects a background fit that has
finished, so whichever page is open when a fit ends makes it current.

The fit store is shared by every session of the server, so a session sees, compares, downloads,
relabels and deletes only the fits made on the data it has loaded (bhm_core.artifacts.scope), and
never deletes a fit that another session has current (ui.session.in_use) or that the store's
`current` pointer names.
"""

from __future__ import annotations

import functools
import io
import time
import zipfile
from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from bhm_core import artifacts
from bhm_core.artifacts import FitStore
from bhm_core.errors import BhmError, FitDivergedError
from bhm_core.inference.state import FitResult
from bhm_core.model.config import FitConfig, Priors
from ui.session import in_use, loaders, state, warmup
from ui.session.jobs import FitJob
from ui.session.lifecycle import Lifecycle, Notice


@dataclass(frozen=True, eq=False)
class CurrentFit:
    result: FitResult
    key: str  # artifact key; a partial fit's key has a suffix and is not saved
    saved: bool
    from_cache: bool
    seconds: float | None  # wall time of the attempt that produced it; None when reopened
    note: str | None = None  # why a saved copy could not be used, if there was one

    def summary(self) -> str:
        r = self.result
        return (
            f"{len(r.store_ids)} stores, {len(r.losses):,} steps, final loss {r.final_loss:,.1f}, key `{self.key[:12]}`"
        )


def fit_store() -> FitStore:
    return FitStore(artifacts.default_fit_root())


def stores_to_fit(cube) -> tuple[list[int], bool]:
    """The picked stores, or the first state.DEFAULT_STORES when none are picked (flag True)."""
    picks = state.selected_stores(cube.store_ids)
    if picks:
        return sorted(picks), False
    return cube.store_ids[: state.DEFAULT_STORES].tolist(), True


def make_current(fit: CurrentFit) -> None:
    before = st.session_state.get(state.FIT)
    if before is not None and before.saved and before.key != fit.key:
        st.session_state[state.PREVIOUS_FIT] = before.key  # what a what-if compares the new fit with
    st.session_state[state.FIT] = fit
    in_use.sync()


def _keep_partial(fit: CurrentFit) -> None:
    st.session_state[state.FIT_PARTIAL] = fit


def _succeeded(done: FitJob) -> Notice:
    """A fit_or_load that returned: a cancelled fit is kept aside as a partial, others are current."""
    out = done.outcome
    result = out.result
    if result.meta.get("cancelled"):
        n = len(result.losses)
        _keep_partial(CurrentFit(result, f"{out.key}-partial{n}", False, False, done.seconds))
        return Notice(
            "warning",
            f"Fit cancelled after {n:,} of {done.config.steps:,} steps; it was not "
            "saved. The previous fit stays current.",
        )
    make_current(CurrentFit(result, out.key, True, out.from_cache, done.seconds, out.note))
    if out.from_cache:
        return Notice("success", "Loaded from the cache: another session saved the same fit meanwhile.")
    meta = result.meta
    text = (
        f"Fitted {len(result.store_ids)} stores in {done.seconds:.1f} s ({meta.get('steps', 0):,} "
        f"steps; compiling took {meta.get('compile_seconds', 0):.1f} s) and saved it."
    )
    if out.note:
        text += f" A saved copy could not be used: {out.note}"
    return Notice("success", text)


def _failed(done: FitJob, error: BaseException) -> Notice | None:
    """A diverged fit keeps its last finite state aside (it can still be used)."""
    if not isinstance(error, FitDivergedError):
        return None
    if error.last_good is not None:
        _keep_partial(CurrentFit(error.last_good, f"{done.key}-diverged{error.step}", False, False, done.seconds))
    return Notice("error", f"{error} The previous fit stays current.")


LIFECYCLE = Lifecycle("fit", "fit", state.FIT_JOB, state.FIT_NOTICE, _succeeded, _failed)


def job() -> FitJob | None:
    return LIFECYCLE.job()


def collect() -> None:
    """Turn a finished background fit into the current fit (or a notice saying why not)."""
    LIFECYCLE.collect()


def current() -> CurrentFit | None:
    """The fit the pages show. One made on data that changed since under the same source (a new
    download into the same folder) is dropped, with a notice: its stores' data are not what it saw."""
    collect()
    in_use.sync()
    fit = st.session_state.get(state.FIT)
    if fit is not None and not _fits_the_data(fit):
        st.session_state.pop(state.FIT, None)
        LIFECYCLE.notify("info", "The data changed since the last fit, so it is no longer in use: fit again.")
        return None
    return fit


def _fits_the_data(fit: CurrentFit) -> bool:
    try:
        cube = loaders.load_cube(state.current_source())
        return loaders.fit_cube(cube, fit.result.store_ids).fingerprint == fit.result.data_fingerprint
    except BhmError:
        return False


def shown() -> CurrentFit | None:
    """The current fit without collecting a finished job (what the sidebar shows before the page)."""
    fit = st.session_state.get(state.FIT)
    return fit if fit is not None and _fits_the_data(fit) else None


def notice() -> Notice | None:
    return LIFECYCLE.notice()


def start(cube, store_ids, config: FitConfig, priors: Priors) -> None:
    """Use the saved fit for exactly these inputs at once, else start fitting in the background."""
    if job() is not None:
        return  # one fit at a time per session
    warmup.compilation_cache()
    sub = loaders.fit_cube(cube, store_ids)
    key = artifacts.fit_key(sub.fingerprint, config, priors, sub.spec)
    store = fit_store()
    began = time.perf_counter()
    saved, _ = store.get(key)  # a stale or corrupt copy: fit_or_load refits and says why
    st.session_state.pop(state.FIT_PARTIAL, None)
    if saved is not None:
        seconds = time.perf_counter() - began
        make_current(CurrentFit(saved, key, True, True, seconds))
        LIFECYCLE.notify(
            "success",
            f"Loaded from the cache in {seconds * 1000:.0f} ms: a fit with the same "
            "data, priors and settings was saved before.",
        )
        return
    source = state.current_source()
    label = artifacts.default_label(source.label, sub.store_ids, config, priors, sub.spec)
    LIFECYCLE.start(
        lambda: FitJob(store, sub, config, priors, key=key, label=label, source=source, after=draw_first_forecasts)
    )


def draw_first_forecasts(result, cube) -> None:
    """Draw, in the fit's job, what the Forecast page shows first (its default stores, history and
    horizon), so that the compiled sampling programs are there when the page opens."""
    from bhm_core.forecast.predict import forecast, forecast_total

    end = cube.dates[-1]
    stores = [int(i) for i in result.store_ids[:3]]
    for first, last, seed in ((end - 55, end, 0), (end + 1, end + 42, 1)):
        forecast(result, cube, stores, first, last, n_samples=500, seed=seed, chunk_stores=8)
        forecast_total(result, cube, result.store_ids, first, last, n_samples=500, seed=seed)


def use_partial() -> None:
    partial = st.session_state.pop(state.FIT_PARTIAL, None)
    if partial is not None:
        make_current(partial)
        LIFECYCLE.notify("info", "The partial fit is current. It is not saved: fit again to keep one.")


def reopen(key: str, quiet: bool = False) -> bool:
    """Make a saved fit current, if it belongs to the data in use. Callback of the history table;
    quiet (a link's fit): no notice on success, and the reason in the link's notice otherwise."""
    try:
        result = loaders.saved_fit(str(fit_store().root), key)
        sub = loaders.fit_cube(loaders.load_cube(state.current_source()), result.store_ids)
        if sub.fingerprint != result.data_fingerprint:
            raise BhmError(
                f"fit {key[:12]} was made on other data (its stores differ from those "
                "stores in the data in use); load that data on the Data page first"
            )
    except BhmError as exc:
        if quiet:
            st.session_state[state.URL_NOTICE] = f"The fit of the link ({key[:12]}) cannot be shown: {exc}"
        else:
            LIFECYCLE.notify("error", f"Cannot reopen fit {key[:12]}: {exc}")
        return False
    make_current(CurrentFit(result, key, True, True, None))
    if not quiet:
        LIFECYCLE.notify(
            "success",
            f"Reopened fit {key[:12]} ({len(result.store_ids)} stores); its priors and settings are now "
            "in the editors.",
        )
    return True


def make_pointer(key: str) -> None:
    """Point the fits folder's `current` at a saved fit of the data in use (what `serve --fit
    current` answers with). Callback of the History page."""
    try:
        _check_ours(key)
        fit_store().set_current(key)
    except BhmError as exc:
        LIFECYCLE.notify("error", f"Cannot make fit {key[:12]} current: {exc}")
        return
    LIFECYCLE.notify("success", f"Fit {key[:12]} is now the fits folder's current fit; a server of it follows.")


def saved_fits(cube) -> pd.DataFrame:
    """FitStore.list() of the fits made on `cube`'s data, newest first."""
    store = fit_store()
    root = str(store.root)

    def match(row) -> str:
        stamp = str(row.get("record_sha256") or row.get("arrays_sha256"))
        return loaders.fit_usability(cube.fingerprint, root, row["key"], stamp, row, cube)

    return artifacts.fits_of_data(store, cube, match=match)


def _check_ours(key: str) -> None:
    """BhmError unless `key` is a fit made on the data in use: whatever a widget sends, a
    session never acts on a fit of other data."""
    cube = loaders.load_cube(state.current_source())
    if key not in saved_fits(cube)["key"].tolist():
        raise BhmError(f"there is no saved fit {key[:12]} of the data in use")


def delete_refusal(key: str) -> str | None:
    """Why `key` cannot be deleted now, or None."""
    if in_use.used_elsewhere(key):
        return "another session has it as its current fit; it can be deleted once no one uses it"
    if fit_store().current_key() == key:
        return "it is the fit store's current fit (its `current` file names it); make another fit current first"
    return None


def delete(key: str) -> None:
    """Delete a saved fit of the data in use, unless another session or the store's pointer uses it."""
    st.session_state.pop(state.FIT_DELETE, None)
    try:
        _check_ours(key)
        refusal = delete_refusal(key)
        if refusal is not None:
            raise BhmError(refusal)
        fit_store().delete(key)
    except BhmError as exc:
        LIFECYCLE.notify("error", f"Fit {key[:12]} was not deleted: {exc}.")
        return
    loaders.saved_fit.clear()
    now = st.session_state.get(state.FIT)
    text = f"Deleted fit {key[:12]}."
    if now is not None and now.key == key:
        make_current(replace(now, saved=False))
        text += " It stays current in this session until you fit or reopen another."
    LIFECYCLE.notify("info", text)


def relabel(key: str, label: str) -> str | None:
    """Give a saved fit of the data in use another label; the message when that is refused."""
    try:
        _check_ours(key)
        fit_store().relabel(key, label)
    except BhmError as exc:
        return str(exc)
    return None


def zip_bytes(key: str) -> bytes:
    """The saved fit's arrays.npz and record.json, zipped; only a fit of the data in use."""
    return download(key)()


def download(key: str):
    """A function that zips saved fit `key` (a download button's deferred data), once checked to
    be a fit of the data in use. The check is made here, in the session's run: Streamlit calls the
    function later from a thread of its own, without the session."""
    _check_ours(key)
    return functools.partial(_zip, fit_store().root, key)


def _zip(root, key: str) -> bytes:
    folder = FitStore(root).path(key)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("record.json", "arrays.npz"):
            archive.write(folder / name, f"fit-{key}/{name}")
    return buffer.getvalue()
