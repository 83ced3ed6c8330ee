"""What-ifs and exports in the library: a promo plan's uplift from paired draws, two fits compared
against their own uncertainty, a Kaggle submission from a test.csv calendar, CSV cells escaped."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from bhm_core.csvsafe import to_csv
from bhm_core.data import future
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.forecast import whatif
from bhm_core.forecast.sampling import Scenario
from bhm_core.forecast.submission import submission
from bhm_core.inference.fit import fit
from bhm_core.model.config import FitConfig


@pytest.fixture(scope="module")
def fitted():
    cube = load_dataset(DemoSource(n_stores=12, n_days=300, seed=2)).cube()
    return cube, fit(cube, FitConfig(steps=60))


def test_promo_plan_changes_only_the_chosen_cells():
    base = future.from_frame(
        pd.DataFrame(
            {"Store": [1, 1, 2], "Date": pd.to_datetime(["2020-01-06", "2020-01-07", "2020-01-06"]), "promo": [0, 0, 1]}
        )
    )
    plan = whatif.promo_plan(base, [1], "2020-01-06", "2020-01-12", weekdays=(0,), promo=1)
    values, source = plan.lookup([1, 2], np.array(["2020-01-06", "2020-01-07"], "datetime64[D]"))
    assert values["promo"].tolist() == [[1, 0], [1, -1]]  # store 1's Monday only; store 2 as before
    assert source[0, 0] == future.SOURCES.index("calendar")


def test_promo_uplift_from_paired_draws(fitted):
    cube, result = fitted
    ids = result.store_ids[:4]
    first, last = cube.dates[-1] + 1, cube.dates[-1] + 28
    promo_on = whatif.promo_plan(None, ids, first, last)
    stores, daily = whatif.uplift(
        result, cube, ids, first, last, Scenario(), Scenario(calendar=promo_on), n_samples=200
    )
    total = stores.set_index("store").loc[whatif.TOTAL]
    assert total["uplift"] > 0 and total["uplift_lo_90"] > 0  # promo lifts sales, surely
    assert 25 < total["uplift_pct"] < 70  # the demo's promo is about +46 % on promo days
    assert total["uplift_lo_90"] < total["uplift"] < total["uplift_hi_90"]
    assert total["plan"] == pytest.approx(stores[stores["store"] != whatif.TOTAL]["plan"].sum())
    # The same scenario on both sides: paired draws give exactly no uplift, not noise.
    same, _ = whatif.uplift(result, cube, ids, first, last, Scenario(), Scenario(), n_samples=50)
    assert np.allclose(same["uplift"], 0) and np.allclose(same["uplift_hi_90"], 0)
    assert set(daily.columns) == {"store", "date", "plan", "scenario"} and len(daily) == 4 * 28


def test_two_fits_compared_against_their_own_uncertainty(fitted):
    cube, result = fitted
    ids = result.store_ids[:3]
    first, last = cube.dates[-1] + 1, cube.dates[-1] + 14
    same, daily = whatif.compare_fits(result, result, cube, ids, first, last, n_samples=100)
    assert np.allclose(same["difference"], 0) and not same["larger_than_uncertainty"].any()
    assert {"mean_a", "lo_90_a", "hi_90_b"} <= set(daily.columns) and (daily["store"] == whatif.TOTAL).sum() == 14
    barely = fit(cube, FitConfig(steps=5, init="prior", learning_rate=0.01))  # still near the prior
    table, _ = whatif.compare_fits(result, barely, cube, ids, first, last, n_samples=100)
    assert table["larger_than_uncertainty"].all() and (table["difference_pct"].abs() > 10).all()


def test_kaggle_submission_has_every_id_and_zero_on_closed_days(fitted):
    cube, result = fitted
    dates = pd.date_range(pd.Timestamp(cube.dates[-1]) + pd.Timedelta(days=1), periods=10)
    rows = pd.DataFrame({"Store": np.repeat(result.store_ids[:2], 10), "Date": np.tile(dates, 2)})
    rows["Id"] = np.arange(1, 21)
    rows["Open"] = np.where(rows["Date"].dt.day_of_week == 6, "0", "1")
    rows["Promo"] = "0"
    text = rows.assign(Date=rows["Date"].dt.strftime("%Y-%m-%d")).to_csv(index=False)
    calendar_frame = future.validate_calendar(pd.read_csv(io.StringIO(text), dtype=str))
    calendar = future.from_frame(
        calendar_frame[["Store", "Date", "open", "promo"]], "calendar", calendar_frame[["Store", "Date", "Id"]]
    )
    out, left_out = submission(result, cube, calendar, n_samples=100)
    assert list(out.columns) == ["Id", "Sales"] and out["Id"].tolist() == list(range(1, 21)) and not left_out
    sunday = rows.loc[rows["Date"].dt.day_of_week == 6, "Id"]
    assert (out.set_index("Id").loc[sunday, "Sales"] == 0).all()
    assert (out.set_index("Id").drop(sunday)["Sales"] > 0).all()


def test_csv_cells_that_start_a_formula_are_escaped():
    frame = pd.DataFrame(
        {"name": ["=HYPERLINK(1)", "+1", "-x", "@SUM", "\tx", "plain"], "value": [-1.5, 2, 3, 4, 5, 6]}
    )
    back = pd.read_csv(io.StringIO(to_csv(frame)), dtype={"name": str})
    assert back["name"].tolist() == ["'=HYPERLINK(1)", "'+1", "'-x", "'@SUM", "'\tx", "plain"]
    assert back["value"].tolist() == [-1.5, 2, 3, 4, 5, 6]  # numbers stay numbers
    assert to_csv(pd.DataFrame({"=a": [1]})).splitlines()[0] == "'=a"
