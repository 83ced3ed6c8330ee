"""A saved fit reopened together with the data it was made on, for forecasting outside the dashboard.

A fit artifact holds the guide, the settings and the fingerprint of its data, not the data; the
record says where the data came from (a demo's size and seed, a folder, a CSV with its column
mapping). Reopening loads those data (or the folder given instead), rebuilds the cube with the fit's
features for the fit's stores, and checks its fingerprint against the fit's, so a forecast is never
drawn from covariates the fit did not see. The data folder's calendar ahead (`test.csv` or
`test.csv.gz`) comes along when there is one, and the public holidays of each store's inferred
region for the days it does not cover (data.public_holidays). What that builds is kept under the
fits folder (artifacts.prepared), so the next reopen of the same data reads it back instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bhm_core.artifacts import FitStore, prepared
from bhm_core.data.cube import SalesCube
from bhm_core.data.features import FeatureSpec
from bhm_core.data.future import FutureCalendar, read_calendar
from bhm_core.data.public_holidays import with_public_holidays
from bhm_core.data.sources import CsvSource, DemoSource, KaggleDirSource, calendar_file, load_dataset
from bhm_core.errors import ArtifactError, DataError
from bhm_core.inference.state import FitResult


@dataclass(frozen=True, eq=False)
class Reopened:
    key: str
    result: FitResult
    cube: SalesCube  # the fit's stores, encoded with the fit's features
    record: dict
    calendar: FutureCalendar | None
    source: object  # the data source the cube was loaded from


def source_from_record(source: dict | None):
    """The data source a fit's record names, or None when it names none (older fits)."""
    if not source:
        return None
    kind = source.get("kind")
    if kind == "demo":
        return DemoSource(n_stores=source["n_stores"], n_days=source["n_days"], seed=source["seed"])
    if kind == "kaggle-dir":
        return KaggleDirSource(source["path"])
    if kind == "csv":
        return CsvSource(source["path"], columns=tuple(tuple(pair) for pair in source.get("columns", ())))
    raise ArtifactError(f"the fit's record names an unknown data source {kind!r}")


CURRENT = "current"  # FIT naming the fits folder's current fit (the one `retrain` promotes)


def locate(fit: str, fits_root: str | Path) -> tuple[FitStore, str]:
    """(the store, the key) of FIT given as a key under `fits_root`, as a fit's folder, or as
    `current`: the fit the folder's current pointer names."""
    path = Path(fit).expanduser()
    if path.is_dir() and (path / "record.json").is_file():
        return FitStore(path.parent), path.name
    store = FitStore(fits_root)
    if fit == CURRENT:
        key = store.current_key()
        if key is None:
            raise ArtifactError(
                f"no current fit under {store.root}: make one current with `fit` (a folder's first fit "
                "becomes current) or `retrain`, or give a fit's key"
            )
        return store, key
    store.path(fit)  # refuses anything but a key
    if not store.path(fit).is_dir():
        raise ArtifactError(f"no saved fit {fit!r} under {store.root} (give a fit's key or its folder)")
    return store, fit


def reopen(
    fit: str,
    fits_root: str | Path,
    *,
    data_dir: str | None = None,
    calendar: str | None = None,
    max_bytes: int | None = None,
) -> Reopened:
    store, key = locate(fit, fits_root)
    result = store.load(key)
    record = store.record(key)
    source = KaggleDirSource(data_dir) if data_dir else source_from_record((record.get("lineage") or {}).get("source"))
    if source is None:
        raise DataError(f"fit {key} does not say which data it was made on; give them with --data-dir")
    calendar_path = Path(calendar) if calendar else calendar_file(source)
    entry = prepared.entry_key(source, calendar_path, record["spec"], result.store_ids, result.data_fingerprint)
    kept = prepared.read(store.root, entry)
    if kept is not None:
        cube, ahead = kept
        return Reopened(key, result, cube, record, ahead, source)
    options = {} if max_bytes is None else {"max_bytes": max_bytes}
    cube = load_dataset(source, **options).cube(FeatureSpec(**record["spec"])).select_stores(result.store_ids)
    if cube.fingerprint != result.data_fingerprint:
        raise DataError(
            f"the data of {source.label} are not the data fit {key} was made on (their fingerprints "
            "differ); give the data it was fitted on, or fit again"
        )
    ahead, _ = with_public_holidays(cube, None if calendar_path is None else read_calendar(calendar_path))
    prepared.write(store.root, entry, cube, ahead)
    return Reopened(key, result, cube, record, ahead, source)
