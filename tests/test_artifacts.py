"""Saved fits: what loading refuses, what a crash leaves, concurrent writers, paths outside the store."""

import json
import os
import threading
import time

import numpy as np
import pytest

from bhm_core.artifacts import FitStore, fit_key, fit_or_load, folders, layout
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.errors import ArtifactError
from bhm_core.forecast.predict import forecast
from bhm_core.inference.fit import fit
from bhm_core.inference.state import DAY_SHOCK_SD
from bhm_core.model.config import FitConfig, Priors

SMALL = FitConfig(steps=20, chunk_steps=10)


@pytest.fixture(scope="module")
def cube():
    return load_dataset(DemoSource(n_stores=6, n_days=120, seed=4)).cube()


@pytest.fixture(scope="module")
def result(cube):
    return fit(cube, SMALL)


def key_of(cube, config=SMALL):
    return fit_key(cube.fingerprint, config, Priors(), cube.spec)


def saved(tmp_path, cube, result):
    store = FitStore(tmp_path)
    key = key_of(cube)
    store.save(result, key, spec=cube.spec)
    return store, key


def read(store, key):
    folder = store.path(key)
    record = json.loads((folder / "record.json").read_text())
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return record, arrays


def rewrite(store, key, record, arrays, *, reseal=True):
    """Write the fit's files back in place; reseal: recompute both checksums, as a forger would."""
    if reseal:
        record["arrays_sha256"] = layout.arrays_digest(arrays)
        record[layout.RECORD_HASH] = layout.record_digest(record)
    folder = store.path(key).resolve()
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "record.json").write_text(json.dumps(record))


# ---------------------------------------------------------------------------------------------
# integrity: the whole record and every array


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["priors"]["promo"].update(mu_loc=0.5),
        lambda r: r.update(feature_names=[r["feature_names"][1], r["feature_names"][0], *r["feature_names"][2:]]),
        lambda r: r["meta"].update({DAY_SHOCK_SD: 0.5}),
        lambda r: r["config"].update(learning_rate=0.5),
        lambda r: r.update(store_ids=r["store_ids"][::-1]),
    ],
    ids=["priors", "feature order", "day-shock sd", "config", "store order"],
)
def test_an_edited_record_is_refused_and_refitted(tmp_path, cube, result, edit):
    store, key = saved(tmp_path, cube, result)
    record, arrays = read(store, key)
    edit(record)
    rewrite(store, key, record, arrays, reseal=False)
    with pytest.raises(ArtifactError, match=f"saved fit {key}: record edited"):
        store.load(key)
    again = fit_or_load(store, cube, SMALL, Priors())
    assert not again.from_cache and "record edited" in again.note
    assert fit_or_load(store, cube, SMALL, Priors()).from_cache


def test_changed_arrays_with_the_old_record_are_refused(tmp_path, cube, result):
    store, key = saved(tmp_path, cube, result)
    record, arrays = read(store, key)
    arrays["params/z/loc"] = arrays["params/z/loc"] + 1.0  # same names, shapes, dtypes
    rewrite(store, key, record, arrays, reseal=False)
    with pytest.raises(ArtifactError, match="corrupt .*arrays do not match the record's checksum"):
        store.load(key)


def drop_last_store(name):
    return lambda arrays: arrays.update({name: arrays[name][:-1]})


def replace_array(name, make):
    return lambda arrays: arrays.update({name: make(arrays[name])})


SHAPE = "array {} has shape {}, expected {}"
WRONG_ARRAYS = {
    "z rows": (drop_last_store("params/z/loc"), SHAPE.format("params/z/loc", r"\(5, (\d+)\)", r"\(6, \1\)")),
    "w rows": (drop_last_store("params/w/log_scale"), SHAPE.format("params/w/log_scale", r"\(5,\)", r"\(6,\)")),
    "theta columns": (replace_array("params/theta_mu/loc", lambda a: a[:-1]), "array params/theta_mu/loc has shape"),
    "optimizer moment": (replace_array("opt/.mu['z'].loc", lambda a: a[:, :3]), r"array opt/.mu\['z'\].loc has shape"),
    "dtype": (
        replace_array("losses", lambda a: a.astype(np.float32)),
        "array losses has dtype float32, expected float64",
    ),
    "step": (replace_array("step", lambda a: np.zeros(2, np.int32)), SHAPE.format("step", r"\(2,\)", r"\(\)")),
    "optimizer count": (lambda a: a.pop("opt/.count"), "array opt/.count is missing"),
    "half a basis": (lambda a: a.pop("params/z_basis/chol"), r"arrays \['params/z_basis/chol'\] are missing"),
    "extra": (lambda a: a.update({"extra": np.zeros(3)}), "array extra is not part of a fit"),
    "store ids": (replace_array("store_ids", lambda a: a[::-1].copy()), "store_ids differs from the record"),
}


@pytest.mark.parametrize("change, message", list(WRONG_ARRAYS.values()), ids=list(WRONG_ARRAYS))
def test_arrays_unlike_what_the_model_builds_are_refused_even_resealed(tmp_path, cube, result, change, message):
    store, key = saved(tmp_path, cube, result)
    record, arrays = read(store, key)
    change(arrays)
    rewrite(store, key, record, arrays)
    with pytest.raises(ArtifactError, match=message):
        store.load(key)
    again = fit_or_load(store, cube, SMALL, Priors())  # refitted, never half-loaded
    assert not again.from_cache and "corrupt" in again.note
    np.testing.assert_array_equal(store.load(key).params["z"].loc, result.params["z"].loc)


def test_a_fit_started_at_the_prior_has_no_basis_and_loads(tmp_path, cube):
    config = FitConfig(steps=5, init="prior")
    plain = fit(cube, config)
    assert "z_basis" not in plain.params
    store = FitStore(tmp_path)
    store.save(plain, key_of(cube, config))
    assert store.load(key_of(cube, config)).params.keys() == plain.params.keys()


def test_pickled_arrays_are_never_loaded(tmp_path, cube, result):
    store, key = saved(tmp_path, cube, result)
    record, arrays = read(store, key)
    arrays["losses"] = np.array([object()], dtype=object)
    record["arrays_sha256"] = "x"
    record[layout.RECORD_HASH] = layout.record_digest(record)
    folder = store.path(key).resolve()
    np.savez(folder / "arrays.npz", **arrays)  # an object array: stored pickled
    (folder / "record.json").write_text(json.dumps(record))
    with pytest.raises(ArtifactError, match="corrupt .*cannot be read.*allow_pickle"):
        store.load(key)


# ---------------------------------------------------------------------------------------------
# leftovers of crashed saves


def age(path, seconds):
    old = time.time() - seconds
    for child in path.iterdir() if path.is_dir() and not path.is_symlink() else ():
        os.utime(child, (old, old), follow_symlinks=False)
    os.utime(path, (old, old), follow_symlinks=False)


def test_leftovers_of_crashed_saves_are_removed_when_a_store_opens_or_lists(tmp_path, cube, result):
    store, key = saved(tmp_path, cube, result)
    live = store.path(key).resolve()
    crashed = tmp_path / ".tmp-0123"
    crashed.mkdir()
    (crashed / "arrays.npz").write_bytes(b"half")
    orphan = tmp_path / f".v-{key}-{'0' * 32}"
    orphan.mkdir()
    trash = tmp_path / ".del-0123"
    trash.mkdir()
    link = tmp_path / ".lnk-0123"
    link.symlink_to(orphan.name)
    fresh = tmp_path / ".tmp-4567"  # a concurrent writer's: kept
    fresh.mkdir()
    (fresh / "arrays.npz").write_bytes(b"being written")
    for path in (crashed, orphan, trash, link):
        age(path, folders.STALE_SECONDS + 60)
    age(live, folders.STALE_SECONDS + 60)  # an old fit is not a leftover
    FitStore(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([key, live.name, fresh.name])
    age(fresh, folders.STALE_SECONDS + 60)
    assert store.list()["key"].tolist() == [key]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([key, live.name])
    assert store.load(key).steps == result.steps


def test_a_failed_save_says_so_in_one_line_and_leaves_nothing(tmp_path, cube, result, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    store = FitStore(tmp_path)
    with pytest.raises(ArtifactError, match="cannot save fit abc in .*No space left"):
        store.replace_with(result, "abc")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# concurrent writers of one fit


def test_a_reader_always_finds_a_whole_copy_while_writers_replace_it(tmp_path, cube, result):
    _, key = saved(tmp_path, cube, result)
    stop, problems, loads = threading.Event(), [], []

    def write(n):
        try:
            for _ in range(n):
                FitStore(tmp_path).replace_with(result, key)
        except Exception as exc:  # a writer's failure fails the test too
            problems.append(f"writer: {exc}")

    def keep_loading():
        while not stop.is_set():
            found, reason = FitStore(tmp_path).get(key)
            if found is None:
                problems.append(reason or "absent")
            else:
                loads.append(found.steps)

    readers = [threading.Thread(target=keep_loading) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(15,)) for _ in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert problems == [] and len(loads) > 10
    assert set(loads) == {result.steps}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".lnk-", ".del-"))]


def test_save_keeps_an_existing_copy_and_replace_swaps_it(tmp_path, cube, result):
    store, key = saved(tmp_path, cube, result)
    first = store.path(key).resolve()
    store.save(result, key)
    assert store.path(key).resolve() == first
    store.replace_with(result, key)
    assert store.path(key).resolve() != first and not first.exists()
    a = forecast(result, cube, cube.store_ids[:2], cube.dates[-5], cube.dates[-1], n_samples=40, seed=1)
    b = forecast(store.load(key), cube, cube.store_ids[:2], cube.dates[-5], cube.dates[-1], n_samples=40, seed=1)
    np.testing.assert_array_equal(a["point"].to_numpy(), b["point"].to_numpy())
    store.delete(key)
    assert list(tmp_path.iterdir()) == [] and store.get(key) == (None, None)


# ---------------------------------------------------------------------------------------------
# nothing outside the store through a key


@pytest.mark.parametrize("key", ["", "..", "../x", "a/b", "/etc", "ABC", "abc.", "0" * 65, None, 12])
def test_keys_that_are_not_hex_are_refused_everywhere(tmp_path, result, key):
    store = FitStore(tmp_path / "fits")
    for call in (store.path, store.load, store.get, store.delete, store.record, store.store_ids):
        with pytest.raises(ArtifactError, match="not a fit key"):
            call(key)
    for call in (store.save, store.replace_with):
        with pytest.raises(ArtifactError, match="not a fit key"):
            call(result, key)
    assert not (tmp_path / "fits").exists()


def test_links_and_files_leading_outside_the_store_are_never_followed(tmp_path, cube, result):
    outside = tmp_path / "outside"
    elsewhere = FitStore(outside)
    elsewhere.save(result, "abc")
    store = FitStore(tmp_path / "fits")
    store.root.mkdir()
    (store.root / "abc").symlink_to(elsewhere.path("abc").resolve())  # planted: leads out
    with pytest.raises(ArtifactError, match="links to .*not to a version of it"):
        store.load("abc")
    assert store.get("abc")[0] is None and store.list().empty
    store.delete("abc")  # the link goes, what it led to stays
    assert not (store.root / "abc").is_symlink() and elsewhere.load("abc").steps == result.steps
    store.save(result, "abc")
    version = store.path("abc").resolve()
    (version / "record.json").unlink()
    (version / "record.json").symlink_to(elsewhere.path("abc").resolve() / "record.json")
    with pytest.raises(ArtifactError, match="cannot be read"):
        store.load("abc")
    (store.root / "abd").symlink_to(elsewhere.path("abc").resolve())
    store.replace_with(result, "abd")  # the bad link is replaced; its target is untouched
    assert store.load("abd").steps == result.steps and elsewhere.load("abc").steps == result.steps


def test_a_folder_of_the_previous_format_is_stale_and_replaced_in_one_step(tmp_path, cube, result):
    store = FitStore(tmp_path)
    old = tmp_path / "abc"
    old.mkdir()
    (old / "record.json").write_text(json.dumps({"key": "abc", "versions": {"format": 2}, "created": "2024"}))
    (old / "arrays.npz").write_bytes(b"")
    assert store.list()["stale"].tolist() == [True]
    found, reason = store.get("abc")
    assert found is None and "made with" in reason
    store.replace_with(result, "abc")
    assert (tmp_path / "abc").is_symlink() and store.load("abc").steps == result.steps
    assert not list(tmp_path.glob(".del-*"))
