"""The prepared data a reopen keeps under the fits folder: the same cube and calendar as reading the
files, read back instead of them, and never trusted once edited, truncated or out of date."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from bhm_core import reopen as reopen_module
from bhm_core.artifacts import prepared
from bhm_core.cli import main
from bhm_core.data.demo import generate_demo, to_kaggle_csv
from bhm_core.data.sources import DemoSource
from bhm_core.reopen import reopen

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A fit of a Kaggle-layout folder with a calendar ahead (test.csv), saved by the command line."""
    root = tmp_path_factory.mktemp("prepared")
    data = root / "rossmann"
    to_kaggle_csv(generate_demo(DemoSource(n_stores=4, n_days=150, seed=3)), data)
    ahead = pd.DataFrame(
        {"Id": range(1, 9), "Store": [1] * 4 + [2] * 4, "DayOfWeek": 1, "Open": 1, "Promo": [0, 1] * 4}
    ).assign(
        Date=[str(d.date()) for d in pd.date_range("2013-05-31", periods=4)] * 2, StateHoliday="0", SchoolHoliday=0
    )
    ahead.to_csv(data / "test.csv", index=False)
    assert main(["fit", "--data-dir", str(data), "--steps", "15", "--out", str(root / "fits")]) == 0
    key = next(p.name for p in (root / "fits").iterdir() if not p.name.startswith("."))
    return root, data, key


def _entries(root):
    return sorted((root / "fits" / prepared.FOLDER).glob("*.npz"))


def _assert_same(a, b):
    """Two dataclass trees hold equal arrays, frames and values."""
    assert type(a) is type(b)
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if dataclasses.is_dataclass(x):
            _assert_same(x, y)
        elif isinstance(x, np.ndarray):
            assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), field.name  # NaT and NaN too
        elif isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y)
        elif isinstance(x, dict):
            assert list(x) == list(y), field.name  # the order too
            for k in x:
                assert (x[k].dtype, x[k].tobytes()) == (y[k].dtype, y[k].tobytes())
        else:
            assert x == y, field.name


def _reopen_without_files(monkeypatch, root, key):
    def refuse(*args, **kwargs):
        raise AssertionError("the data files were read again")

    monkeypatch.setattr(reopen_module, "load_dataset", refuse)
    return reopen(key, root / "fits")


def _forecast_file(root, key, name) -> bytes:
    out = root / f"{name}.csv"
    argv = ["forecast", "--fit", key, "--fits-dir", str(root / "fits"), "--all", "--horizon", "6", "--samples", "50"]
    assert main([*argv, "--out", str(out)]) == 0
    return out.read_bytes()


def test_a_second_reopen_reads_the_kept_data_and_forecasts_alike(fitted, monkeypatch):
    root, _, key = fitted
    first = reopen(key, root / "fits")
    assert len(_entries(root)) == 1
    from_files = _forecast_file(root, key, "first")
    second = _reopen_without_files(monkeypatch, root, key)
    _assert_same(first.cube, second.cube)
    _assert_same(first.calendar, second.calendar)
    assert second.cube.fingerprint == first.result.data_fingerprint
    assert _forecast_file(root, key, "second") == from_files  # the calendar ahead included


def test_an_edited_or_truncated_entry_is_read_from_the_files_again(fitted, monkeypatch):
    root, _, key = fitted
    reopen(key, root / "fits")
    (entry,) = _entries(root)
    good = entry.read_bytes()
    middle = len(good) // 2
    for damaged in (good[:middle], good[:middle] + bytes([good[middle] ^ 1]) + good[middle + 1 :]):
        entry.write_bytes(damaged)
        assert prepared.read(root / "fits", entry.stem) is None
        opened = reopen(key, root / "fits")  # from the files, and kept again
        assert opened.cube.fingerprint == opened.result.data_fingerprint
        assert prepared.read(root / "fits", entry.stem) is not None


def test_changed_files_or_another_calendar_are_a_new_entry(fitted, tmp_path):
    root, data, key = fitted
    opened = reopen(key, root / "fits")
    before = {p.name for p in _entries(root)}
    calendar = tmp_path / "calendar.csv"
    pd.read_csv(data / "test.csv").head(4).to_csv(calendar, index=False)
    with_file = reopen(key, root / "fits", calendar=str(calendar))
    assert {p.name for p in _entries(root)} - before, "another calendar is another entry"
    assert with_file.calendar is not None and opened.calendar is not None
    stat = (data / "store.csv").stat()
    os.utime(data / "store.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: maybe edited
    count = len(_entries(root))
    reopen(key, root / "fits")
    assert len(_entries(root)) == count + 1


def test_an_entry_naming_an_unknown_object_is_refused(fitted):
    root, _, key = fitted
    opened = reopen(key, root / "fits")
    arrays = {}
    tree = {"cube": {"class": "Popen", "fields": {"args": "true"}}, "calendar": None}
    manifest = np.frombuffer(prepared.canonical(tree), np.uint8)
    arrays[prepared.DIGEST] = np.frombuffer(prepared._digest(manifest, arrays).encode(), np.uint8)
    arrays[prepared.MANIFEST] = manifest
    np.savez(root / "fits" / prepared.FOLDER / "forged.npz", **arrays)
    assert prepared.read(root / "fits", "forged") is None
    assert opened.cube is not None


@pytest.mark.parametrize("dtype", ["category", "object", "period[D]"])
def test_an_entry_naming_a_column_type_beyond_plain_values_is_refused(fitted, dtype):
    """A valid digest over an edited manifest: a stores column made some other pandas type by name."""
    import json

    root, _, key = fitted
    reopen(key, root / "fits")
    source = _entries(root)[0]
    with np.load(source, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    tree = json.loads(arrays.pop(prepared.MANIFEST).tobytes())
    arrays.pop(prepared.DIGEST)
    numeric = next(c for c in tree["cube"]["stores"] if "array" in c)
    numeric["dtype"] = dtype
    manifest = np.frombuffer(prepared.canonical(tree), np.uint8)
    arrays[prepared.DIGEST] = np.frombuffer(prepared._digest(manifest, arrays).encode(), np.uint8)
    arrays[prepared.MANIFEST] = manifest
    np.savez(root / "fits" / prepared.FOLDER / "edited.npz", **arrays)
    assert prepared.read(root / "fits", "edited") is None
    assert prepared.read(root / "fits", source.stem) is not None  # the entry it was made from reads


def test_only_the_newest_entries_are_kept(fitted, tmp_path):
    _, _, key = fitted
    opened = reopen(key, fitted[0] / "fits")
    for i in range(prepared.KEEP + 2):
        path = prepared.write(tmp_path, f"entry{i}", opened.cube, None)
        os.utime(path, (i, i))
    kept = sorted(p.stem for p in (tmp_path / prepared.FOLDER).glob("*.npz"))
    assert kept == [f"entry{i}" for i in range(2, prepared.KEEP + 2)]
    assert not list((tmp_path / prepared.FOLDER).glob(".tmp-*"))


def test_a_fits_folder_that_cannot_hold_entries_still_reopens(fitted, tmp_path):
    _, data, _ = fitted
    fits = tmp_path / "fits"
    assert main(["fit", "--data-dir", str(data), "--steps", "15", "--out", str(fits)]) == 0
    (fits / prepared.FOLDER).write_text("not a folder")
    opened = reopen(next(p.name for p in fits.iterdir() if not p.name.startswith(".")), fits)
    assert opened.cube.fingerprint == opened.result.data_fingerprint


def test_a_linked_prepared_folder_is_never_followed(fitted, tmp_path):
    _, data, _ = fitted
    fits, elsewhere = tmp_path / "fits", tmp_path / "elsewhere"
    assert main(["fit", "--data-dir", str(data), "--steps", "15", "--out", str(fits)]) == 0
    elsewhere.mkdir()
    (elsewhere / "precious.npz").write_bytes(b"not ours")
    (fits / prepared.FOLDER).symlink_to(elsewhere)
    opened = reopen(next(p.name for p in fits.iterdir() if not p.name.startswith(".")), fits)
    assert opened.cube.fingerprint == opened.result.data_fingerprint
    assert [p.name for p in elsewhere.iterdir()] == ["precious.npz"]
