"""Data layer: validation messages, the date-aligned cube, its mask, features, the demo, the CLI.

Everything runs on tiny hand-written CSVs in tmp_path or on the built-in demo data; the real
Rossmann files are never needed. Hand-computed expectations are written out next to each table.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bhm_core.data.calendar import WEEKDAY_NAMES, weekday_of
from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS
from bhm_core.data.cube import CLOSED, MISSING, OPEN
from bhm_core.data.demo import KAGGLE_STORE_COLUMNS, KAGGLE_TRAIN_COLUMNS, generate_demo, to_kaggle_csv
from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import CsvSource, DemoSource, KaggleDirSource, load_dataset, read_csv_text, sniff_header
from bhm_core.data.validate import validate_train
from bhm_core.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
KAGGLE_HEADER = ",".join(KAGGLE_TRAIN_COLUMNS)
STORES_CSV = "Store,StoreType,Assortment,Promo2\n1,a,a,0\n2,c,c,1\n3,d,a,0\n"


def kaggle_folder(
    folder: Path, train: str | bytes, stores: str | bytes = STORES_CSV, train_name: str = "train.csv"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ((train_name, train), ("store.csv", stores)):
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def load_folder(folder: Path, train, stores=STORES_CSV, **kwargs):
    return load_dataset(KaggleDirSource(str(kaggle_folder(folder, train, stores))), **kwargs)


def kaggle_rows(*rows: str) -> str:
    """Kaggle-layout train.csv; rows are 'Store,DayOfWeek,Date,Sales,Customers,Open,Promo,SH,School'."""
    return "\n".join([KAGGLE_HEADER, *rows]) + "\n"


GOOD_ROWS = ("1,5,2015-07-31,5263,555,1,1,0,1", "2,5,2015-07-31,6064,625,1,1,0,1", "1,4,2015-07-30,5020,546,1,1,0,1")


@pytest.fixture(scope="session")
def demo():
    return generate_demo(DemoSource())


@pytest.fixture(scope="session")
def demo_cube(demo):
    return demo.cube(FeatureSpec.reference())  # the truth is in the reference parameterisation


# ---------------------------------------------------------------------------------------------
# Validation: every bad file gets a DataError saying what, where and how often
# ---------------------------------------------------------------------------------------------


def test_good_kaggle_folder_loads(tmp_path):
    cube = load_folder(tmp_path, kaggle_rows(*GOOD_ROWS)).cube()
    assert cube.store_ids.tolist() == [1, 2]
    assert cube.dates.tolist() == [dt.date(2015, 7, 30), dt.date(2015, 7, 31)]
    assert cube.sales.tolist() == [[5020, 5263], [0, 6064]]


# (bad row(s) appended to the good ones, column named, row count, example text in the message)
BAD_CELLS = {
    "unparseable date": (
        ["3,5,31.07.2015,1,1,1,1,0,0", "3,5,2015-13-01,1,1,1,1,0,0"],
        "'Date'",
        "2 row(s)",
        "Date=31.07.2015",
    ),
    "non-integer store": (["x1,5,2015-07-31,1,1,1,1,0,0"], "'Store'", "1 row(s)", "Store=x1"),
    "fractional store": (["1.5,5,2015-07-31,1,1,1,1,0,0"], "'Store'", "1 row(s)", "Store=1.5"),
    "negative sales": (
        ["3,5,2015-07-31,-5,1,1,1,0,0", "3,4,2015-07-30,-1,1,1,1,0,0"],
        "'Sales'",
        "2 row(s)",
        "Sales=-5",
    ),
    "non-numeric sales": (["3,5,2015-07-31,lots,1,1,1,0,0"], "'Sales'", "1 row(s)", "Sales=lots"),
    "state holiday d": (["3,5,2015-07-31,1,1,1,1,d,0"], "'StateHoliday'", "1 row(s)", "StateHoliday=d"),
    "duplicate store-date": (["1,5,2015-07-31,1,1,1,1,0,0"], "'Store, Date'", "1 row(s)", "Store=1, Date=2015-07-31"),
    "open is 2": (["3,5,2015-07-31,1,1,2,1,0,0"], "'Open'", "1 row(s)", "Open=2"),
    "promo is x": (
        ["3,5,2015-07-31,1,1,1,x,0,0", "3,4,2015-07-30,1,1,1,x,0,0", "3,3,2015-07-29,1,1,1,x,0,0"],
        "'Promo'",
        "3 row(s)",
        "Promo=x",
    ),
}


@pytest.mark.parametrize("case", BAD_CELLS, ids=list(BAD_CELLS))
def test_bad_cells_name_column_count_and_example(tmp_path, case):
    bad_rows, column, count, example = BAD_CELLS[case]
    with pytest.raises(DataError) as err:
        load_folder(tmp_path, kaggle_rows(*GOOD_ROWS, *bad_rows))
    message = str(err.value)
    assert message.startswith("train.csv: ")
    assert column in message and count in message and example in message
    # The first bad row follows the header and the three good rows: line 5 of the file.
    assert "line 5" in message


def test_missing_required_column_is_named(tmp_path):
    text = "Store,Date,Open\n1,2015-07-31,1\n"
    with pytest.raises(DataError, match=r"missing required column\(s\) \['Sales'\]"):
        load_folder(tmp_path, text)


def test_state_holiday_accepts_string_and_integer_zero():
    # The real file has the string '0' and the integer 0 in one column (pandas reads it as object).
    raw = pd.DataFrame(
        {
            "Store": [1, 1, 1, 1, 1, 1],
            "Date": [f"2015-07-{d:02d}" for d in range(1, 7)],
            "Sales": ["1", "2", "3", "4", "5", "6"],
            "StateHoliday": pd.Series([0, "0", "a", "b", "c", 0.0], dtype=object),
        }
    )
    out = validate_train(raw)
    assert out["StateHoliday"].tolist() == [0, 0, 1, 2, 3, 0]
    assert [STATE_HOLIDAY_LEVELS[c] for c in out["StateHoliday"]] == ["0", "0", "a", "b", "c", "0"]


def test_state_holiday_quoted_and_bare_zero_in_a_file(tmp_path):
    rows = (
        '1,5,2015-07-31,5263,555,1,1,"0",1',
        "1,4,2015-07-30,5020,546,1,1,0,1",
        "1,3,2015-07-29,5020,546,1,1,a,1",
        "1,2,2015-07-28,5020,546,1,1,,1",
    )
    cube = load_folder(tmp_path, kaggle_rows(*rows)).cube()
    # Ordered by date: 28th blank (read as none), 29th 'a', 30th bare 0, 31st quoted "0".
    assert cube.covariates.state_holiday.tolist() == [[0, 1, 0, 0]]


def test_stores_missing_from_the_store_file_are_kept_as_unknown_with_a_note(tmp_path):
    rows = (*GOOD_ROWS, "3,5,2015-07-31,1,1,1,1,0,0", "4,5,2015-07-31,1,1,1,1,0,0")
    stores = "Store,StoreType,Assortment,Promo2\n1,a,a,0\n2,a,a,0\n"
    loaded = load_folder(tmp_path, kaggle_rows(*rows), stores)
    (note,) = loaded.notes
    assert note.startswith("store.csv has no row for 2 store(s)") and "stores 3, 4" in note
    cube = loaded.cube()
    assert cube.store_ids.tolist() == [1, 2, 3, 4]
    assert cube.stores["StoreType"].tolist() == ["a", "a", "unknown", "unknown"]
    assert cube.covariates.variant_levels == ("a/a", "unknown/unknown")
    assert loaded.file_rows == {"train.csv": 5, "store.csv": 2}


def test_a_blank_store_type_is_its_own_unknown_level_with_a_note(tmp_path):
    stores = "Store,StoreType,Assortment,Promo2\n1,a,a,0\n2,,c,1\n"
    loaded = load_folder(tmp_path, kaggle_rows(*GOOD_ROWS), stores)
    (note,) = loaded.notes
    assert "StoreType is blank for 1 store(s) (stores 2)" in note
    assert loaded.cube().covariates.variant_levels == ("a/a", "unknown/c")


def test_store_file_repeated_store(tmp_path):
    stores = "Store,StoreType,Assortment,Promo2\n1,a,a,0\n2,a,a,0\n2,c,c,1\n"
    with pytest.raises(DataError, match=r"'Store' repeats a store id in 1 row\(s\); e.g. line 4"):
        load_folder(tmp_path, kaggle_rows(*GOOD_ROWS), stores)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="train.csv: the file is empty"):
        load_folder(tmp_path, b"")


def test_header_only_file(tmp_path):
    with pytest.raises(DataError, match="train.csv: the file has a header but no data rows"):
        load_folder(tmp_path, KAGGLE_HEADER + "\n")


def test_wrong_field_count_is_one_line_with_the_line_number(tmp_path):
    text = kaggle_rows(GOOD_ROWS[0], GOOD_ROWS[1] + ",surplus")
    with pytest.raises(DataError) as err:
        load_folder(tmp_path, text)
    message = str(err.value)
    assert "not a well-formed CSV" in message and "line 3" in message
    assert "\n" not in message


def test_unbalanced_quote(tmp_path):
    text = kaggle_rows(GOOD_ROWS[0], '2,5,"2015-07-31,6064,625,1,1,0,1', GOOD_ROWS[2])
    with pytest.raises(DataError, match="train.csv: not a well-formed CSV .*EOF inside string"):
        load_folder(tmp_path, text)


def test_corrupt_gzip(tmp_path):
    folder = kaggle_folder(tmp_path, b"this is not gzip data at all\n", train_name="train.csv.gz")
    with pytest.raises(DataError, match="train.csv.gz: the compressed file is corrupt or truncated"):
        load_dataset(KaggleDirSource(str(folder)))


def test_truncated_gzip(tmp_path):
    # A partial download: a valid gzip stream cut in half.
    text = kaggle_rows(*[f"{s},5,2015-07-31,{s},1,1,1,0,0" for s in range(1, 4000)])
    whole = gzip.compress(text.encode())
    folder = kaggle_folder(tmp_path, whole[: len(whole) // 2], train_name="train.csv.gz")
    with pytest.raises(DataError, match="train.csv.gz: the compressed file is corrupt or truncated"):
        load_dataset(KaggleDirSource(str(folder)))


def test_gzip_folder_loads(tmp_path):
    folder = kaggle_folder(tmp_path, gzip.compress(kaggle_rows(*GOOD_ROWS).encode()), train_name="train.csv.gz")
    assert load_dataset(KaggleDirSource(str(folder))).cube().summary()["n_observed"] == 3


def test_non_utf8_file(tmp_path):
    stores = "Store,StoreType,Assortment,Promo2\n1,a,a,0\n2,c,caf\xe9,1\n".encode("latin-1")
    with pytest.raises(DataError, match="store.csv: not a UTF-8 text file"):
        load_folder(tmp_path, kaggle_rows(*GOOD_ROWS), stores)


def test_file_above_size_limit_names_the_limit(tmp_path):
    with pytest.raises(DataError) as err:
        load_folder(tmp_path, kaggle_rows(*GOOD_ROWS), max_bytes=100)
    message = str(err.value)
    assert message.startswith("train.csv: ") and "limit of 100 bytes" in message


def test_gzip_is_limited_by_its_decompressed_size(tmp_path):
    # 2 GB of text gzips far below a 1 GB limit; the cap must count what is parsed, not the disk.
    text = kaggle_rows(*[f"1,5,2015-07-31,{s},1,1,1,0,0" for s in range(1, 400)])
    packed = gzip.compress(text.encode())
    assert len(packed) < 2_000 < len(text)
    path = tmp_path / "train.csv.gz"
    path.write_bytes(packed)
    with pytest.raises(DataError, match="train.csv.gz: the decompressed text is above the limit of 2,000 bytes"):
        read_csv_text(path, max_bytes=2_000)
    assert len(read_csv_text(path, max_bytes=len(text))) == 399


def test_folder_without_train_csv(tmp_path):
    (tmp_path / "store.csv").write_text(STORES_CSV)
    with pytest.raises(DataError, match="no train.csv or train.csv.gz"):
        load_dataset(KaggleDirSource(str(tmp_path)))


def test_folder_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        load_dataset(KaggleDirSource(str(tmp_path / "nowhere")))


def test_sniff_header_strips_bom_and_reads_gzip(tmp_path):
    plain = tmp_path / "own.csv"
    plain.write_bytes("\ufeffshop,day,revenue\n1,2015-07-31,5\n".encode("utf-8"))
    packed = tmp_path / "own.csv.gz"
    packed.write_bytes(gzip.compress(b"shop,day,revenue\n1,2015-07-31,5\n"))
    assert sniff_header(plain) == ["shop", "day", "revenue"]
    assert sniff_header(packed) == ["shop", "day", "revenue"]


# ---------------------------------------------------------------------------------------------
# Edge sizes
# ---------------------------------------------------------------------------------------------


def test_one_store_one_day(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("Store,Date,Sales\n7,2015-07-31,123\n")
    cube = load_dataset(CsvSource(str(path))).cube()
    assert (cube.n_stores, cube.n_days) == (1, 1)
    assert cube.store_ids.tolist() == [7] and str(cube.dates[0]) == "2015-07-31"
    assert cube.sales.tolist() == [[123.0]] and cube.observed.tolist() == [[True]]
    assert cube.design.index.shape[:2] == (1, 1)


def test_demo_default_size_is_fast():
    start = time.perf_counter()
    data = generate_demo(DemoSource())
    cube = data.cube()
    seconds = time.perf_counter() - start
    print(f"demo {cube.n_stores} stores x {cube.n_days} days generated in {seconds:.2f} s")
    assert (cube.n_stores, cube.n_days) == (200, 942)
    assert seconds < 10  # a sanity bound only; the target (2 s) is reported by the print above


# ---------------------------------------------------------------------------------------------
# The date alignment pin
# ---------------------------------------------------------------------------------------------

DAYS = pd.date_range("2015-03-02", periods=10, freq="D")  # Monday 2 March .. Wednesday 11 March


@pytest.fixture
def gap_cube(tmp_path):
    """Store 1: every day. Store 2: days 0-2 and 7-9 (gap 3..6). Store 3: opens on day 5.

    Sales encode (store, day) as 1000 * store + day, so a shifted cell shows at once. Rows are
    written newest first and stores interleaved, so file position carries no date information.
    """
    present = {1: range(10), 2: [0, 1, 2, 7, 8, 9], 3: range(5, 10)}
    rows = [f"{s},{DAYS[t]:%Y-%m-%d},{1000 * s + t},1" for t in reversed(range(10)) for s in present if t in present[s]]
    path = tmp_path / "gap.csv"
    path.write_text("Store,Date,Sales,Open\n" + "\n".join(rows) + "\n")
    return load_dataset(CsvSource(str(path))).cube()


def test_gap_store_keeps_later_sales_on_their_dates(gap_cube):
    cube = gap_cube
    assert cube.dates.tolist() == [d.date() for d in DAYS]
    row = cube.store_rows([2])[0]
    for t in (0, 1, 2, 7, 8, 9):
        assert cube.sales[row, t] == 2000 + t
        assert cube.status[row, t] == OPEN and cube.observed[row, t]
    # Indexed by "n-th row of the store", day 7's sales would sit in column 3.
    assert cube.sales[row, 3:7].tolist() == [0, 0, 0, 0]
    assert (cube.status[row, 3:7] == MISSING).all()
    assert not cube.observed[row, 3:7].any()


def test_late_opener_starts_on_its_first_date(gap_cube):
    row = gap_cube.store_rows([3])[0]
    assert (gap_cube.status[row, :5] == MISSING).all() and not gap_cube.observed[row, :5].any()
    assert gap_cube.sales[row, 5:].tolist() == [3005, 3006, 3007, 3008, 3009]
    full = gap_cube.store_rows([1])[0]
    assert gap_cube.sales[full].tolist() == [1000 + t for t in range(10)]


# ---------------------------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------------------------

MASK_TABLE = """Store,Date,Sales,Open,Promo
1,2015-07-27,100,1,1
1,2015-07-28,0,0,1
1,2015-07-29,0,1,1
1,2015-07-30,,1,1
1,2015-07-31,150,1,1
2,2015-07-27,200,1,0
2,2015-07-30,220,1,0
2,2015-07-31,0,0,0
"""


def test_mask_and_summary_counts(tmp_path):
    """Store 1: open 100, closed, open with 0, open with blank, open 150.
    Store 2: open 200, no row, no row, open 220, closed.
    Observed: s1 Mon + Fri, s2 Mon + Thu = 4. Closed: 2. No row: 2. Open but not observed: s1 Wed,
    Thu = 2. Rows: 8 = 4 + 2 + 2.
    """
    path = tmp_path / "mask.csv"
    path.write_text(MASK_TABLE)
    cube = load_dataset(CsvSource(str(path))).cube()
    assert cube.observed.tolist() == [[True, False, False, False, True], [True, False, False, True, False]]
    assert cube.status.tolist() == [[OPEN, CLOSED, OPEN, OPEN, OPEN], [OPEN, MISSING, MISSING, OPEN, CLOSED]]
    # Unobserved cells hold 0, never NaN: the model multiplies them by a zero mask.
    assert cube.sales.tolist() == [[100, 0, 0, 0, 150], [200, 0, 0, 220, 0]]
    summary = cube.summary()
    expected = {
        "n_stores": 2,
        "n_days": 5,
        "first_date": "2015-07-27",
        "last_date": "2015-07-31",
        "n_rows": 8,
        "n_observed": 4,
        "n_closed": 2,
        "n_missing_rows": 2,
        "n_open_not_observed": 2,
    }
    assert {k: summary[k] for k in expected} == expected


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------

FEATURE_TABLE = """Store,Date,Sales,Open,Promo,StateHoliday,SchoolHoliday
1,2015-04-03,10,1,0,b,1
1,2015-04-04,11,1,1,0,0
1,2015-04-05,12,1,1,a,0
2,2015-04-03,20,1,0,0,0
2,2015-04-04,21,1,0,c,1
2,2015-04-05,22,1,1,0,1
"""
FEATURE_STORES = "Store,StoreType,Assortment,Promo2\n1,b,a,1\n2,a,c,0\n"


def dense(design) -> np.ndarray:
    """Decode the slots into the (S, T, F) one-hot matrix they stand for."""
    s, t, k = design.index.shape
    out = np.zeros((s, t, design.n_features), np.float32)
    for slot in range(k):
        np.add.at(out, (*np.indices((s, t)), design.index[..., slot]), design.value[..., slot])
    return out


def test_encoded_design_equals_hand_built_one_hot(tmp_path):
    folder = tmp_path / "features"
    cube = load_folder(folder, FEATURE_TABLE, FEATURE_STORES).cube(FeatureSpec.reference())
    names = cube.feature_names
    assert names == (
        "weekday_Mon",
        "weekday_Tue",
        "weekday_Wed",
        "weekday_Thu",
        "weekday_Fri",
        "weekday_Sat",
        "weekday_Sun",
        "promo",
        "state_holiday_0",
        "state_holiday_a",
        "state_holiday_b",
        "state_holiday_c",
        "school_holiday",
        "promo2",
        "variant_a/c",
        "variant_b/a",
    )
    expected = np.zeros((2, 3, len(names)), np.float32)
    weekday = {"2015-04-03": "Fri", "2015-04-04": "Sat", "2015-04-05": "Sun"}  # Good Friday 2015
    store_feature = {1: ["promo2", "variant_b/a"], 2: ["variant_a/c"]}
    for row in pd.read_csv(folder / "train.csv", dtype=str).itertuples():
        s, t = int(row.Store) - 1, ["2015-04-03", "2015-04-04", "2015-04-05"].index(row.Date)
        on = [f"weekday_{weekday[row.Date]}", f"state_holiday_{row.StateHoliday}", *store_feature[int(row.Store)]]
        on += ["promo"] * (row.Promo == "1") + ["school_holiday"] * (row.SchoolHoliday == "1")
        for name in on:
            expected[s, t, names.index(name)] = 1.0
    np.testing.assert_array_equal(dense(cube.design), expected)


def test_weekday_mapping():
    assert WEEKDAY_NAMES[weekday_of(np.array(["2015-07-31"], dtype="datetime64[D]"))[0]] == "Fri"
    days = pd.date_range("1969-12-20", "2016-01-10", freq="D")
    np.testing.assert_array_equal(weekday_of(days.to_numpy()), days.day_of_week.to_numpy())


def test_weekday_feature_in_cube(gap_cube):
    # 2 March 2015 was a Monday: the first column's weekday slot points at weekday_Mon.
    names = gap_cube.feature_names
    first_days = [names[i] for i in gap_cube.design.index[0, :7, 0]]
    assert first_days == [f"weekday_{d}" for d in WEEKDAY_NAMES]


def test_feature_groups_switched_off(tmp_path):
    data = load_folder(tmp_path, FEATURE_TABLE, FEATURE_STORES)
    spec = replace(
        FeatureSpec.reference(),
        promo=False,
        state_holiday=False,
        school_holiday=False,
        promo2=False,
        store_variant=False,
    )
    cube = data.cube(spec)
    assert cube.feature_names == tuple(f"weekday_{d}" for d in WEEKDAY_NAMES)
    assert cube.design.index.shape == (2, 3, 1)
    only_promo = data.cube(
        replace(FeatureSpec.reference(), state_holiday=False, school_holiday=False, promo2=False, store_variant=False)
    )
    assert only_promo.feature_names[-1] == "promo" and only_promo.design.index.shape[-1] == 2
    np.testing.assert_array_equal(only_promo.design.value[..., 1], [[0, 1, 1], [0, 0, 1]])


def test_yearly_harmonics(tmp_path):
    cube = load_folder(tmp_path, FEATURE_TABLE, FEATURE_STORES).cube(
        replace(FeatureSpec.reference(), yearly_harmonics=2)
    )
    names = cube.feature_names
    assert names[-4:] == ("yearly_sin1", "yearly_sin2", "yearly_cos1", "yearly_cos2")
    assert cube.design.index.shape[-1] == 6 + 4
    terms = dense(cube.design)[..., -4:]
    # Same for every store, a proper (sin, cos) pair per harmonic, and it moves from day to day.
    np.testing.assert_allclose(terms[0], terms[1])
    np.testing.assert_allclose(terms[0, :, 0] ** 2 + terms[0, :, 2] ** 2, 1.0, rtol=1e-5)
    assert np.ptp(terms[0, :, 0]) > 0
    day = cube.dates.astype(np.int64)
    np.testing.assert_allclose(terms[0, :, 1], np.sin(4 * np.pi * day / 365.25), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"yearly_harmonics": -1},
        {"yearly_harmonics": 11},
        {"yearly_harmonics": 2.0},
        {"yearly_harmonics": True},
        {"yearly_harmonics": "3"},
        {"promo": "no"},
        {"store_variant": 0},
    ],
)
def test_invalid_feature_spec(kwargs):
    with pytest.raises(ConfigError, match=f"FeatureSpec.{next(iter(kwargs))}"):
        FeatureSpec(**kwargs)


def test_feature_spec_normalises_numpy_types():
    spec = FeatureSpec(promo=np.bool_(False), yearly_harmonics=np.int64(3))
    assert spec == FeatureSpec(promo=False, yearly_harmonics=3)
    assert hash(spec) == hash(FeatureSpec(promo=False, yearly_harmonics=3))


# ---------------------------------------------------------------------------------------------
# Demo data
# ---------------------------------------------------------------------------------------------


def test_demo_is_deterministic_per_seed():
    small = DemoSource(n_stores=25, n_days=120, seed=3)
    first, again = generate_demo(small), generate_demo(small)
    other = generate_demo(DemoSource(n_stores=25, n_days=120, seed=4))
    assert first.cube().fingerprint == again.cube().fingerprint
    np.testing.assert_array_equal(first.truth["theta"], again.truth["theta"])
    assert first.cube().fingerprint != other.cube().fingerprint


def test_demo_has_gaps_and_late_openers(demo_cube):
    has_row = demo_cube.status != MISSING
    first = has_row.argmax(axis=1)
    last = demo_cube.n_days - 1 - has_row[:, ::-1].argmax(axis=1)
    inner_missing = np.array([(~has_row[s, first[s] : last[s] + 1]).sum() for s in range(demo_cube.n_stores)])
    gap_stores = np.flatnonzero(inner_missing >= 90)  # months-long refurbishment
    late_stores = np.flatnonzero(first >= demo_cube.n_days // 3)
    assert len(gap_stores) >= 1 and len(late_stores) >= 1
    # A late opener has no hole after it opens; the gap stores trade before and after the gap.
    assert (inner_missing[late_stores] == 0).all()
    assert (first[gap_stores] == 0).all() and (last[gap_stores] == demo_cube.n_days - 1).all()


def test_demo_most_stores_closed_on_sunday(demo_cube):
    sunday = weekday_of(demo_cube.dates) == 6
    status = demo_cube.status[:, sunday]
    closed_share = (status == CLOSED).sum(axis=1) / np.maximum((status != MISSING).sum(axis=1), 1)
    assert (closed_share > 0.9).mean() > 0.8
    # ... and open on most weekdays.
    weekdays = demo_cube.status[:, weekday_of(demo_cube.dates) < 5]
    assert (weekdays == OPEN).sum() / (weekdays != MISSING).sum() > 0.9


def test_demo_promo_on_alternate_weeks_monday_to_friday(demo):
    per_day = demo.train.groupby("Date")["Promo"].agg(["min", "max"])
    assert (per_day["min"] == per_day["max"]).all()  # a chain-wide calendar
    dates = per_day.index.to_numpy().astype("datetime64[D]")
    promo = per_day["max"].to_numpy()
    weekday = weekday_of(dates)
    assert (promo[weekday >= 5] == 0).all()
    week = (dates.astype(np.int64) + 3) // 7  # Monday-based week number
    by_week = pd.Series(promo[weekday < 5]).groupby(week[weekday < 5]).agg(["min", "max"])
    assert (by_week["min"] == by_week["max"]).all()  # all of Mon-Fri or none of it
    full_weeks = by_week[pd.Series(weekday < 5).groupby(week).sum().loc[by_week.index] == 5]
    np.testing.assert_array_equal(np.abs(np.diff(full_weeks["max"].to_numpy())), 1)


def test_demo_truth_shapes(demo, demo_cube):
    truth = demo.truth
    s, f = demo_cube.n_stores, demo_cube.design.n_features
    assert truth["feature_names"] == demo_cube.feature_names
    assert truth["theta"].shape == (s, f)
    assert truth["theta_mu"].shape == truth["theta_sigma"].shape == (f,)
    assert truth["r"].shape == (s,)
    np.testing.assert_array_equal(truth["store_ids"], demo_cube.store_ids)


def test_demo_round_trips_through_kaggle_csv(demo, demo_cube, tmp_path):
    to_kaggle_csv(demo, tmp_path)
    assert sniff_header(tmp_path / "train.csv") == list(KAGGLE_TRAIN_COLUMNS)
    assert sniff_header(tmp_path / "store.csv") == list(KAGGLE_STORE_COLUMNS)
    again = load_dataset(KaggleDirSource(str(tmp_path))).cube(demo_cube.spec)
    assert again.fingerprint == demo_cube.fingerprint
    assert again.summary() == demo_cube.summary()


def test_demo_size_out_of_range():
    with pytest.raises(ConfigError, match="demo size"):
        generate_demo(DemoSource(n_stores=0))


# ---------------------------------------------------------------------------------------------
# Own CSV with a column mapping
# ---------------------------------------------------------------------------------------------

OWN_CSV = """shop,day,revenue,is_open,kind
10,2015-07-30,500,1,c
10,2015-07-31,0,0,c
20,2015-07-31,700,1,d
"""
OWN_MAP = (("Store", "shop"), ("Date", "day"), ("Sales", "revenue"), ("Open", "is_open"))


def test_csv_source_with_mapping_and_defaults(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text(OWN_CSV)
    cube = load_dataset(CsvSource(str(path), OWN_MAP)).cube()
    assert cube.store_ids.tolist() == [10, 20]
    assert cube.sales.tolist() == [[500, 0], [0, 700]]
    assert cube.status.tolist() == [[OPEN, CLOSED], [MISSING, OPEN]]
    cov = cube.covariates
    # Absent optional columns: no promo, no holidays, one store variant, no Promo2.
    assert not cov.promo.any() and not cov.state_holiday.any() and not cov.school_holiday.any()
    assert cov.variant_levels == ("a/a",) and not cov.promo2.any()


def test_csv_source_maps_store_attributes(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text(OWN_CSV)
    cube = load_dataset(CsvSource(str(path), (*OWN_MAP, ("StoreType", "kind")))).cube()
    assert cube.covariates.variant_levels == ("c/a", "d/a")
    assert cube.stores["StoreType"].tolist() == ["c", "d"]


def test_csv_source_store_without_its_attribute_is_kept_as_unknown(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text(OWN_CSV.replace("700,1,d", "700,1,"))  # store 20's kind left blank
    loaded = load_dataset(CsvSource(str(path), (*OWN_MAP, ("StoreType", "kind"))))
    assert loaded.cube().stores["StoreType"].tolist() == ["c", "unknown"]
    assert "StoreType is blank for 1 store(s) (stores 20)" in loaded.notes[0]


def test_csv_source_mapping_to_absent_column(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text(OWN_CSV)
    mapping = (("Store", "shop"), ("Date", "day"), ("Sales", "turnover"))
    with pytest.raises(DataError, match="own.csv: mapped column.*Sales <- 'turnover'"):
        load_dataset(CsvSource(str(path), mapping))


def test_csv_source_mapping_unknown_field(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text(OWN_CSV)
    with pytest.raises(DataError, match=r"unknown field\(s\) \['Revenue'\]"):
        load_dataset(CsvSource(str(path), (*OWN_MAP, ("Revenue", "revenue"))))


def test_csv_source_mapped_column_shadows_same_named_one(tmp_path):
    # The file has its own 'Sales' (here: units) but the user picked 'revenue' as sales.
    path = tmp_path / "own.csv"
    path.write_text("Store,Date,Sales,revenue\n1,2015-07-31,3,999\n")
    cube = load_dataset(CsvSource(str(path), (("Sales", "revenue"),))).cube()
    assert cube.sales.tolist() == [[999]]


def test_csv_source_validates_like_the_others(tmp_path):
    path = tmp_path / "own.csv"
    path.write_text(OWN_CSV + "30,2015-07-31,-3,1,a\n")
    with pytest.raises(DataError, match=r"own.csv: column 'Sales' is negative .* 1 row\(s\)"):
        load_dataset(CsvSource(str(path), OWN_MAP))


# ---------------------------------------------------------------------------------------------
# Selections
# ---------------------------------------------------------------------------------------------


def test_select_stores(gap_cube):
    sub = gap_cube.select_stores([3, 1])
    assert sub.store_ids.tolist() == [1, 3]
    np.testing.assert_array_equal(sub.sales, gap_cube.sales[[0, 2]])
    np.testing.assert_array_equal(sub.design.index, gap_cube.design.index[[0, 2]])
    assert sub.covariates.promo.shape == (2, 10) and len(sub.stores) == 2
    assert sub.stores["Store"].tolist() == [1, 3]


def test_select_days(gap_cube):
    sub = gap_cube.select_days("2015-03-05", "2015-03-08")
    assert [str(d) for d in sub.dates] == ["2015-03-05", "2015-03-06", "2015-03-07", "2015-03-08"]
    np.testing.assert_array_equal(sub.sales, gap_cube.sales[:, 3:7])
    np.testing.assert_array_equal(sub.status, gap_cube.status[:, 3:7])
    assert sub.design.index.shape[:2] == (3, 4) and len(sub.covariates.dates) == 4
    assert gap_cube.select_days(first="2015-03-10").n_days == 2
    with pytest.raises(DataError, match="no days between 2016-01-01 and None"):
        gap_cube.select_days("2016-01-01")


def test_unknown_store_ids(gap_cube):
    assert gap_cube.store_rows([3, 1]).tolist() == [2, 0]
    with pytest.raises(DataError, match=r"unknown store id\(s\) \[999\]"):
        gap_cube.store_rows([1, 999])
    with pytest.raises(DataError, match=r"unknown store id\(s\) \[0\]"):
        gap_cube.select_stores([0, 2])


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "bhm_core", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_cli_info_json_on_demo(demo_cube):
    done = run_cli("info", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["source"] == "demo"
    summary = demo_cube.summary()
    for key in ("n_stores", "n_days", "first_date", "last_date", "n_rows", "n_observed", "n_closed", "n_missing_rows"):
        assert result[key] == summary[key], key
    assert isinstance(result["seconds"], float) and result["seconds"] >= 0


@pytest.mark.parametrize("bad", ["no train.csv", "ragged rows"])
def test_cli_info_on_bad_folder(tmp_path, bad):
    if bad == "no train.csv":
        (tmp_path / "store.csv").write_text(STORES_CSV)
    else:
        kaggle_folder(tmp_path, kaggle_rows(GOOD_ROWS[0], GOOD_ROWS[1] + ",9"))
    done = run_cli("info", "--data-dir", str(tmp_path), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr
