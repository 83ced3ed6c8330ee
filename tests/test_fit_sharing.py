"""One fit store shared by many users: fits scoped to the data they were made on, the store's
current pointer, labels that can be changed without breaking the seal, and where fits live."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from bhm_core import artifacts, paths
from bhm_core.artifacts import FitStore, fit_key, fits_of_data, folders, layout, made_on, scope
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.errors import ArtifactError, ConfigError
from bhm_core.inference.fit import fit
from bhm_core.model.config import FitConfig, Priors

SMALL = FitConfig(steps=10, chunk_steps=10)


@pytest.fixture(scope="module")
def cubes():
    """Two data sets of the same shape and store ids, which differ in their sales only."""
    return tuple(load_dataset(DemoSource(n_stores=6, n_days=90, seed=seed)).cube() for seed in (4, 5))


@pytest.fixture(scope="module")
def results(cubes):
    a, b = cubes
    return {"a": fit(a, SMALL), "a_sub": fit(a.select_stores([2, 3, 4]), SMALL), "b": fit(b, SMALL)}


def save(store, cube, result, label="", config=SMALL):
    key = fit_key(result.data_fingerprint, config, Priors(), cube.spec)
    store.save(result, key, label=label, spec=cube.spec)
    return key


@pytest.fixture
def store(tmp_path, cubes, results):
    a, b = cubes
    store = FitStore(tmp_path / "fits")
    keys = {
        "a": save(store, a, results["a"], "on a"),
        "a_sub": save(store, a.select_stores([2, 3, 4]), results["a_sub"], "three stores of a"),
        "b": save(store, b, results["b"], "on b"),
    }
    return store, keys


def test_a_data_set_lists_only_the_fits_made_on_it(store, cubes):
    store, keys = store
    a, b = cubes
    assert sorted(fits_of_data(store, a)["key"]) == sorted([keys["a"], keys["a_sub"]])
    assert fits_of_data(store, b)["key"].tolist() == [keys["b"]]
    assert made_on(store, keys["a_sub"], a) and not made_on(store, keys["b"], a)
    assert not made_on(store, "abc", a)  # no such fit
    other = load_dataset(DemoSource(n_stores=3, n_days=90, seed=4)).cube()  # stores 1-3 of a
    assert fits_of_data(store, other).empty  # a's fits hold stores 3 lacks, or 4 and more
    assert list(fits_of_data(store, a).columns) == list(FitStore.LIST_COLUMNS)


def test_fits_whose_records_lack_store_ids_are_matched_from_their_arrays(store, cubes):
    store, keys = store
    path = store.path(keys["a"]) / "record.json"
    record = json.loads(path.read_text())
    del record["store_ids"]
    path.write_text(json.dumps(record))
    assert keys["a"] in fits_of_data(store, cubes[0])["key"].tolist()


def test_the_current_pointer_names_a_saved_fit_or_nothing(store):
    store, keys = store
    assert store.current_key() is None
    store.set_current(keys["a"])
    assert store.current_key() == keys["a"]
    assert (store.root / folders.CURRENT).read_text().strip() == keys["a"]
    store.set_current(keys["b"])  # replaced in one rename: no temporary file stays
    assert store.current_key() == keys["b"]
    assert not [p for p in store.root.iterdir() if p.name.startswith(folders.TEMP_PREFIXES)]
    with pytest.raises(ArtifactError, match="no saved fit abc"):
        store.set_current("abc")
    with pytest.raises(ArtifactError, match="not a fit key"):
        store.set_current("../b")
    for text in ("not hex\n", "../" + keys["a"], "", "abc"):  # edited by hand, or a deleted fit
        (store.root / folders.CURRENT).write_text(text)
        assert store.current_key() is None
    (store.root / folders.CURRENT).unlink()
    (store.root / folders.CURRENT).symlink_to(store.path(keys["a"]) / "record.json")  # never followed
    assert store.current_key() is None
    (store.root / folders.CURRENT).unlink()
    store.set_current(keys["a"])
    store.set_current(None)
    assert store.current_key() is None and not (store.root / folders.CURRENT).exists()
    assert sorted(store.keys()) == sorted(keys.values())  # `current` is never taken for a fit


def test_the_current_fit_cannot_be_deleted(store):
    store, keys = store
    store.set_current(keys["a"])
    with pytest.raises(ArtifactError, match="is the store's current fit"):
        store.delete(keys["a"])
    assert store.load(keys["a"]).steps == SMALL.steps
    store.delete(keys["b"])
    assert store.get(keys["b"]) == (None, None)


def test_relabel_writes_a_new_sealed_version_and_keeps_the_arrays(store):
    store, keys = store
    key = keys["a"]
    before_folder = store.path(key).resolve()
    before = store.record(key)
    assert store.relabel(key, "  Baseline\nfor the\tpromo review ") == "Baseline for the promo review"
    after = store.record(key)
    assert after["label"] == "Baseline for the promo review"
    assert after[layout.RECORD_HASH] == layout.record_digest(after) != before[layout.RECORD_HASH]
    assert {k: v for k, v in after.items() if k not in ("label", layout.RECORD_HASH)} == {
        k: v for k, v in before.items() if k not in ("label", layout.RECORD_HASH)
    }
    assert store.path(key).resolve() != before_folder and not before_folder.exists()
    assert store.load(key).steps == SMALL.steps  # the checks on load pass: arrays and seal
    assert store.list().set_index("key").loc[key, "label"] == "Baseline for the promo review"


@pytest.mark.parametrize("label", ["", "   ", "x" * 301, None])
def test_a_label_must_be_short_text(store, label):
    store, keys = store
    with pytest.raises(ConfigError, match="label must be 1 to 300 characters"):
        store.relabel(keys["a"], label)


def test_relabel_refuses_an_edited_record_and_a_missing_fit(store):
    store, keys = store
    path = store.path(keys["a"]) / "record.json"
    record = json.loads(path.read_text())
    record["priors"]["promo"]["mu_loc"] = 0.5  # edited without resealing
    path.write_text(json.dumps(record))
    with pytest.raises(ArtifactError, match="record edited"):
        store.relabel(keys["a"], "laundered")
    with pytest.raises(ArtifactError, match="no saved fit abc"):
        store.relabel("abc", "new")


def test_readers_always_find_a_whole_fit_while_it_is_relabelled(store):
    store, keys = store
    key, stop, problems, labels = keys["a"], threading.Event(), [], set()

    def read():
        while not stop.is_set():
            found, reason = FitStore(store.root).get(key)
            if found is None:
                problems.append(reason or "absent")
            labels.add(FitStore(store.root).record(key)["label"])

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for i in range(12):
            store.relabel(key, f"label {i}")
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert problems == [] and store.record(key)["label"] == "label 11" and len(labels) > 1


def test_default_labels_say_the_data_stores_steps_and_changes():
    config = FitConfig(steps=250, learning_rate=0.01)
    priors = Priors().with_group("promo", mu_loc=0.3)
    label = scope.default_label("CSV file shops.csv", [1, 2, 3, 4, 9, 11, 12], config, priors)
    assert label == (
        "CSV file shops.csv · 7 stores (1–4, 9, 11, 12) · 250 steps · changed: learning_rate=0.01; priors of promo"
    )
    plain = scope.default_label("demo", [5], FitConfig(), Priors())
    assert plain == "demo · 1 store (5) · 100 steps · default settings"
    assert scope.store_ranges(range(1, 60, 2), most=2) == "30 stores (1, 3, …)"


def test_fits_live_under_the_data_root_unless_a_fit_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.FIT_DIR_ENV, raising=False)
    monkeypatch.setenv(paths.DATA_ROOT_ENV, str(tmp_path / "volume"))
    assert artifacts.default_fit_root() == tmp_path / "volume" / "fits"
    assert paths.uploads_root() == tmp_path / "volume" / "uploads"
    monkeypatch.setenv(paths.FIT_DIR_ENV, str(tmp_path / "elsewhere"))
    assert artifacts.default_fit_root() == tmp_path / "elsewhere"
    monkeypatch.delenv(paths.DATA_ROOT_ENV)
    monkeypatch.delenv(paths.FIT_DIR_ENV)
    assert artifacts.default_fit_root() == paths.PROJECT_ROOT / "data" / "fits"


def test_listing_rows_carry_their_stores(store):
    store, keys = store
    row = store.list().set_index("key").loc[keys["a_sub"]]
    assert row["store_ids"] == [2, 3, 4] and isinstance(row["spec"], dict)
    assert np.array_equal(scope.fit_stores(store, keys["a_sub"], None), [2, 3, 4])
