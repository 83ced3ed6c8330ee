"""Anomalous actuals (evaluation.anomalies) on a hand-made frame: which store-days are flagged, their
share of each method's squared percentage error, and the RMSPE with and without them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bhm_core.data.cube import build_cube
from bhm_core.data.validate import default_stores
from bhm_core.evaluation.anomalies import anomalous_actuals, anomaly_summary, store_medians

D1, D2 = pd.Timestamp("2014-11-21"), pd.Timestamp("2014-11-22")
NAN = np.nan


def frame():
    # (store, date, y, hierarchical point, its point_rmspe, its 90% lower bound, the median baseline's point)
    cells = [
        (1, D1, 1000.0, 1000.0, 1000.0, 800.0, 1000.0),
        (1, D2, 50.0, 1100.0, 1000.0, 700.0, 900.0),  # 50 < 0.5 x 700 and < 0.1 x 1000: flagged
        (2, D1, 500.0, 600.0, 600.0, 400.0, 550.0),
        (2, D2, 55.0, 110.0, 110.0, 100.0, 66.0),  # < 0.1 x 600 but not < 0.5 x 66: kept
    ]
    rows = []
    for store, date, y, point, point_rmspe, lo, median in cells:
        rows.append(
            {"store": store, "date": date, "method": "hierarchical", "y": y, "point": point}
            | {"point_rmspe": point_rmspe, "lo_90": lo, "hi_90": 3 * point}
        )
        rows.append(
            {"store": store, "date": date, "method": "median", "y": y, "point": median}
            | {"point_rmspe": NAN, "lo_90": NAN, "hi_90": NAN}
        )
    # A closed day and an unobserved one are never scored, so never flagged.
    rows.append({"store": 1, "date": D2 + pd.Timedelta(days=1), "method": "hierarchical", "y": 0.0, "point": 0.0})
    rows.append({"store": 2, "date": D2 + pd.Timedelta(days=1), "method": "hierarchical", "y": NAN, "point": 900.0})
    return pd.DataFrame(rows)


MEDIANS = pd.Series({1: 1000.0, 2: 600.0})


def test_flags_only_the_store_day_far_below_every_range_and_the_stores_level():
    cells = anomalous_actuals(frame(), MEDIANS)
    assert cells.to_dict(orient="records") == [
        {"store": 1, "date": D2, "y": 50.0, "store_median": 1000.0, "lowest_bound": 700.0}
    ]
    # A looser margin takes in store 2's day too: 55 < 0.9 x 66, the median baseline's point being the
    # lowest bound there; a stricter share of the median drops both.
    loose = anomalous_actuals(frame(), MEDIANS, margin=0.9)
    assert loose["store"].tolist() == [1, 2] and loose["lowest_bound"].tolist() == [700.0, 66.0]
    assert anomalous_actuals(frame(), MEDIANS, share=0.04).empty


def test_summary_gives_each_methods_share_and_rmspe_with_and_without():
    s = anomaly_summary(frame(), MEDIANS)
    # Squared percentage errors on the RMSPE point (point_rmspe where given):
    # hierarchical 0, 19^2 = 361, 0.2^2 = 0.04, 1^2 = 1; median 0, 17^2 = 289, 0.1^2 = 0.01, 0.2^2 = 0.04.
    (cell,) = s["cells"]
    assert (cell["store"], cell["date"], cell["y"], cell["store_median"], cell["lowest_bound"]) == (
        1,
        "2014-11-22",
        50.0,
        1000.0,
        700.0,
    )
    assert cell["share_of_squared_error"] == pytest.approx({"hierarchical": 361 / 362.04, "median": 289 / 289.05})
    assert s["rmspe"] == pytest.approx({"hierarchical": math.sqrt(362.04 / 4), "median": math.sqrt(289.05 / 4)})
    assert s["rmspe_without"] == pytest.approx({"hierarchical": math.sqrt(1.04 / 3), "median": math.sqrt(0.05 / 3)})
    assert "0.5" in s["rule"] and "0.1" in s["rule"]


def test_nothing_flagged_leaves_both_rmspes_equal():
    clean = frame()
    clean.loc[clean["y"] == 50.0, "y"] = 900.0
    s = anomaly_summary(clean, MEDIANS)
    assert s["cells"] == [] and s["rmspe"] == s["rmspe_without"]


def test_store_medians_over_observed_training_days():
    monday = np.datetime64("2015-01-05", "D")
    days = monday + np.arange(5)
    train = pd.DataFrame(
        {
            "Store": np.repeat([1, 2], 5),
            "Date": np.tile(days, 2),
            "Open": [1, 1, 1, 0, 1, 1, 1, 1, 1, 1],
            "Sales": [10.0, 30.0, 20.0, 0.0, 1000.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            "Promo": 0,
            "StateHoliday": 0,
            "SchoolHoliday": 0,
        }
    )
    medians = store_medians(build_cube(train, default_stores(np.array([1, 2]))))
    assert medians.to_dict() == {1: 25.0, 2: 7.0}  # the closed day is not a day with sales
