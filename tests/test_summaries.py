"""Tidy views of a cube (bhm_core.data.summaries), a source's file stamp, and the split of a
forecast window into recorded and what-if days (bhm_core.forecast.windows)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bhm_core.data import summaries
from bhm_core.data.sources import CsvSource, DemoSource, KaggleDirSource, file_stamp, load_dataset
from bhm_core.forecast.sampling import Scenario
from bhm_core.forecast.windows import day_scenario, window_parts

# Store 1: observed, open without sales, closed, observed (4 days).
# Store 2: observed, no row, no row, observed, with a promo (the rest of the file is 2015-01-05..08).
CSV = (
    "Store,Date,Sales,Open,Promo\n"
    "1,2015-01-05,100,1,0\n1,2015-01-06,0,1,0\n1,2015-01-07,0,0,0\n1,2015-01-08,140,1,0\n"
    "2,2015-01-05,50,1,1\n2,2015-01-08,70,1,1\n"
)


@pytest.fixture
def cube(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text(CSV)
    return load_dataset(CsvSource(str(path))).cube()


def test_store_table_counts_each_kind_of_day_and_means_observed_sales(cube):
    table = summaries.store_table(cube).set_index("Store")
    assert table.loc[1, "MeanSales"] == 120 and table.loc[2, "MeanSales"] == 60
    assert table["ObservedDays"].tolist() == [2, 2]
    assert table["ClosedDays"].tolist() == [1, 0]
    assert table["NoRowDays"].tolist() == [0, 2]
    assert table["Promo2"].dtype == bool


def test_display_codes_follow_the_status_labels(cube):
    codes = summaries.display_codes(cube)
    assert codes.tolist() == [[0, 1, 2, 0], [0, 3, 3, 0]]
    assert [summaries.STATUS_LABELS[c] for c in codes[0]] == ["Observed", "Open, no sales", "Closed", "Observed"]


def test_coverage_grid_keeps_the_majority_status_of_each_block():
    codes = np.array([[0, 0, 3, 3, 3, 2, 2], [0, 2, 2, 1, 1, 1, 2]], np.int8)
    assert summaries.block_mode(codes, 2, 3).tolist() == [[0, 1, 2]]
    demo = load_dataset(DemoSource(n_stores=30, n_days=200)).cube()
    weekly = summaries.status_grid(demo, max_days=50, max_stores=10)
    assert weekly["days_per_cell"] == 7 and weekly["stores_per_cell"] == 3
    assert weekly["z"].shape == (10, 29) and len(weekly["x"]) == 29


def test_history_breaks_the_line_after_a_long_gap_and_means_weeks(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("Store,Date,Sales\n1,2015-01-05,10\n1,2015-01-06,20\n1,2015-02-05,30\n1,2015-02-06,50\n")
    cube = load_dataset(CsvSource(str(path))).cube()
    frame = summaries.history_frame(cube, [1], weekly=False)
    assert frame["Sales"].tolist()[:2] == [10, 20] and np.isnan(frame["Sales"].iloc[2])
    assert str(frame["Date"].iloc[2].date()) == "2015-02-04"  # the day before the line resumes
    weekly = summaries.history_frame(cube, [1], weekly=True)
    weeks = weekly.dropna()
    assert (weeks["Date"].dt.day_of_week == 0).all()  # weeks start on Monday
    assert weeks["Sales"].tolist() == [15, 40]  # mean per observed day of each week
    assert weekly["Sales"].isna().sum() == 1  # the gap still breaks the weekly line


def test_a_short_gap_is_bridged(cube):
    assert summaries.history_frame(cube, [2], weekly=False)["Sales"].notna().all()  # 3 days < GAP_DAYS


def test_observed_sales_and_one_day(cube):
    frame = summaries.observed_sales(cube, [1, 2], "2015-01-05", "2015-01-07")
    assert list(frame.columns) == ["store", "date", "y"]
    assert frame[["store", "y"]].values.tolist() == [[1, 100.0], [2, 50.0]]
    assert summaries.observed_sale(cube, 1, "2015-01-08") == 140.0
    assert summaries.observed_sale(cube, 1, "2015-01-07") is None  # closed
    assert summaries.observed_sale(cube, 2, "2015-01-06") is None  # no row
    assert summaries.observed_sale(cube, 2, "2015-02-01") is None  # after the data


def test_file_stamp_changes_with_the_files_under_the_same_path(tmp_path):
    assert file_stamp(DemoSource()) == ""
    path = tmp_path / "sales.csv"
    path.write_text(CSV)
    source = CsvSource(str(path))
    before = file_stamp(source)
    assert before.startswith("sales.csv:")
    path.write_text(CSV + "2,2015-01-09,80,1,0\n")
    os.utime(path, ns=(0, 10**18))
    assert file_stamp(source) != before
    folder = KaggleDirSource(str(tmp_path / "kaggle"))
    assert file_stamp(folder) == ""  # nothing there yet
    (tmp_path / "kaggle").mkdir()
    (tmp_path / "kaggle" / "train.csv.gz").write_bytes(b"x")
    assert file_stamp(folder).startswith("train.csv.gz:1:")


def test_window_parts_keep_recorded_days_apart_from_the_what_if():
    end = np.datetime64("2015-07-31")
    inside = window_parts("2015-07-01", "2015-07-31", end, True)
    assert inside == [(np.datetime64("2015-07-01"), end, Scenario(), 0)]
    after = window_parts("2015-08-01", "2015-08-10", end, True)
    assert after == [(np.datetime64("2015-08-01"), np.datetime64("2015-08-10"), Scenario(1), 1)]
    both = window_parts("2015-07-20", "2015-08-10", end, False)
    assert both == [
        (np.datetime64("2015-07-20"), end, Scenario(), 0),
        (np.datetime64("2015-08-01"), np.datetime64("2015-08-10"), Scenario(), 1),
    ]
    assert day_scenario("2015-07-31", end, True) == Scenario()
    assert day_scenario("2015-08-01", end, True) == Scenario(1)
    assert day_scenario("2015-08-01", end, False) == Scenario()
