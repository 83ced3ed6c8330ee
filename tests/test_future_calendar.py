"""The calendar ahead: read like the training data, and read by forecasts for days after the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bhm_core.data import future
from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.errors import DataError

TEST_CSV = (
    "Id,Store,DayOfWeek,Date,Open,Promo,StateHoliday,SchoolHoliday\n"
    "1,1,4,2015-09-17,1,1,0,0\n"
    "2,3,4,2015-09-17,1,1,0,0\n"
    "3,1,3,2015-09-16,,0,a,1\n"
)


def test_a_test_csv_layout_file_reads_with_blanks_as_unknown_and_keeps_its_ids(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(TEST_CSV)
    calendar = future.read_calendar(path)
    assert calendar.store_ids.tolist() == [1, 3] and str(calendar.first) == "2015-09-16"
    values, source = calendar.lookup([1, 3, 9], np.array(["2015-09-16", "2015-09-17"], "datetime64[D]"))
    assert values["open"].tolist() == [[future.UNKNOWN, 1], [future.UNKNOWN, 1], [future.UNKNOWN, future.UNKNOWN]]
    assert values["state_holiday"][0, 0] == 1 and values["school_holiday"][0].tolist() == [1, 0]
    assert source[2].tolist() == [future.UNKNOWN] * 2 and future.SOURCES[source[0, 1]] == "calendar"
    assert calendar.extra["Id"].tolist() == ["1", "2", "3"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("Store,Date,Open\n1,2015-13-01,1\n", "column 'Date' is not a date"),
        ("Store,Date,Open\n1,2015-09-01,maybe\n", "column 'Open' is not 0/1 (or blank)"),
        ("Store,Date,Promo\n1,2015-09-01,1\n1,2015-09-01,0\n", "repeats an earlier (store, date) pair"),
        ("Date,Open\n2015-09-01,1\n", "missing required column(s) ['Store']"),
        ("Store,Date,StateHoliday\n1,2015-09-01,x\n", "column 'StateHoliday' is not one of"),
    ],
)
def test_bad_calendar_files_get_the_training_datas_messages(tmp_path, text, words):
    path = tmp_path / "calendar.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=None) as caught:
        future.read_calendar(path)
    assert words in str(caught.value) and str(caught.value).startswith("calendar.csv")


def test_over_lays_one_calendar_on_another():
    day = np.datetime64("2015-08-03")
    a = future.from_frame(pd.DataFrame({"Store": [1], "Date": [day], "promo": [1]}))
    b = future.from_frame(pd.DataFrame({"Store": [1, 2], "Date": [day, day], "promo": [0, 0], "open": [1, 0]}))
    values, _ = a.over(b).lookup([1, 2], np.array([day]))
    assert values["promo"].ravel().tolist() == [1, 0] and values["open"].ravel().tolist() == [1, 0]


@pytest.fixture(scope="module")
def fitted():
    from bhm_core.inference.fit import fit
    from bhm_core.model.config import FitConfig

    cube = load_dataset(DemoSource(n_stores=6, n_days=200, seed=3)).cube(FeatureSpec.reference())
    return cube, fit(cube, FitConfig(steps=60))


@pytest.mark.slow
def test_a_promo_week_in_the_calendar_raises_exactly_those_days(fitted):
    from bhm_core.forecast.predict import forecast
    from bhm_core.forecast.sampling import Scenario

    cube, result = fitted
    start = cube.dates[-1] + np.timedelta64(1, "D")
    days = start + np.arange(21)
    promo_days = days[7:12]
    store = int(cube.store_ids[0])
    plan = future.from_frame(pd.DataFrame({"Store": store, "Date": promo_days, "promo": 1, "open": 1}))
    kw = dict(n_samples=300, seed=1)
    plain = forecast(result, cube, [store], days[0], days[-1], **kw).set_index("date")
    planned = forecast(result, cube, [store], days[0], days[-1], scenario=Scenario(calendar=plan), **kw).set_index(
        "date"
    )
    lift = planned["median"] / plain["median"]
    on = pd.to_datetime(promo_days)
    assert (lift.loc[on] > 1.2).all()  # the demo's promo effect is +46 %
    # Every other day has the same law; its draws differ only as the shared generator's stream moves.
    np.testing.assert_allclose(lift.drop(on).dropna(), 1.0, rtol=0.03)
    assert planned.loc[on, "promo"].all() and not planned.drop(on)["promo"].any()


@pytest.mark.slow
def test_a_day_the_calendar_closes_is_forecast_closed_and_an_opened_sunday_open(fitted):
    from bhm_core.forecast.predict import forecast
    from bhm_core.forecast.sampling import Scenario

    cube, result = fitted
    start = cube.dates[-1] + np.timedelta64(1, "D")
    days = start + np.arange(14)
    sunday = days[(days.astype(np.int64) + 3) % 7 == 6][0]
    weekday = days[(days.astype(np.int64) + 3) % 7 == 2][0]
    store = int(cube.store_ids[1])
    plan = future.from_frame(pd.DataFrame({"Store": store, "Date": [sunday, weekday], "open": [1, 0]}))
    frame = forecast(result, cube, [store], days[0], days[-1], n_samples=50, scenario=Scenario(calendar=plan))
    frame = frame.set_index("date")
    assert frame.loc[pd.Timestamp(weekday), "point"] == 0 and not frame.loc[pd.Timestamp(weekday), "open"]
    assert frame.loc[pd.Timestamp(sunday), "open"]
