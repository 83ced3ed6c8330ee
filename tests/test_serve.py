"""The HTTP service through FastAPI's TestClient: every endpoint, every error, the same numbers as
the forecast tables the command line writes, and a reload that swaps the fit between requests."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.forecast import export
from bhm_core.serve.app import Limits, create_app
from bhm_core.serve.served import Holder, ServedFit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served():
    from bhm_core.inference.fit import fit
    from bhm_core.model.config import FitConfig

    cube = load_dataset(DemoSource(n_stores=6, n_days=150, seed=2)).cube(FeatureSpec.reference())
    result = fit(cube, FitConfig(steps=40))
    return ServedFit(
        "0123abcd", result, cube, {"label": "demo", "created": "2026-01-01 00:00:00", "source": {"kind": "demo"}}, None
    )


@pytest.fixture(scope="module")
def client(served):
    return TestClient(create_app(Holder(lambda: served), Limits(max_store_days=400, max_draws=100_000)))


def test_health_and_fit(client, served):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["fit"] == "0123abcd" and isinstance(health["compiled"], bool)
    info = client.get("/v1/fit").json()
    assert info["stores"] == served.result.store_ids.tolist() and info["last_date"] == str(served.cube.dates[-1])
    assert info["likelihood"] == "negative_binomial" and info["label"] == "demo"
    assert "/v1/forecast/interval" in client.get("/openapi.json").json()["paths"]


def test_interval_rows_are_the_forecast_tables_rows(client, served):
    body = {"stores": [2, 1], "horizon": 14, "levels": [50, 80], "samples": 200, "seed": 5}
    reply = client.post("/v1/forecast/interval", json=body).json()
    first, last = export.window(served.cube, horizon=14)
    rows, total, _ = export.tables(served.result, served.cube, export.Request((2, 1), first, last, (50, 80), 200, 5))
    assert reply["fit"] == "0123abcd" and reply["levels"] == [50, 80] and "per store and day" in reply["units"]
    assert [r["store"] for r in reply["rows"][:1]] == [2] and len(reply["rows"]) == 28
    np.testing.assert_allclose([r["hi_80"] for r in reply["rows"]], rows["hi_80"])
    np.testing.assert_allclose([r["point"] for r in reply["rows"]], rows["point"])
    np.testing.assert_allclose([r["lo_50"] for r in reply["total"]], total["lo_50"])
    assert {r["source"] for r in reply["rows"]} == {"default"}


def test_point_rows_hold_the_points_only(client):
    rows = client.post("/v1/forecast/point", json={"stores": [1], "horizon": 3}).json()["rows"]
    assert set(rows[0]) == {"store", "date", "open", "mean", "median", "point", "source"}


def test_density_gives_histograms_or_draws(client):
    rows = client.post("/v1/forecast/density", json={"stores": [3], "horizon": 2, "bins": 12}).json()["rows"]
    open_row = next(r for r in rows if r["open"])
    widths = np.diff(open_row["edges"])
    assert len(open_row["density"]) == 12 and np.sum(np.asarray(open_row["density"]) * widths) == pytest.approx(1.0)
    drawn = client.post("/v1/forecast/density", json={"stores": [3], "horizon": 2, "draws": True, "samples": 30})
    assert all(len(r["draws"]) == 30 for r in drawn.json()["rows"])


def test_covariates_of_a_request_change_its_days_only(client, served):
    ahead = served.cube.dates[-1] + np.arange(1, 8)
    day = str(ahead[(ahead.astype(np.int64) + 3) % 7 == 2][0])  # a Wednesday: open unless told
    base = {"stores": [1], "horizon": 7, "samples": 300}
    plain = client.post("/v1/forecast/interval", json=base).json()["rows"]
    closed = client.post("/v1/forecast/interval", json={**base, "covariates": [{"store": 1, "date": day, "open": 0}]})
    rows = {r["date"]: r for r in closed.json()["rows"]}
    assert rows[day]["open"] is False and rows[day]["mean"] == 0 and rows[day]["source"] == "calendar"
    assert {r["date"]: r["open"] for r in plain}[day] is True


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"stores": [99], "horizon": 3}, 404, "store(s) [99] are not in fit 0123abcd"),
        ({"stores": [1], "horizon": 0}, 422, "horizon: Input should be greater than or equal to 1"),
        ({"stores": [1]}, 422, "give start and end, or horizon"),
        ({"stores": [], "horizon": 3}, 422, "stores:"),
        ({"stores": [1], "horizon": 3, "samples": 0}, 422, "samples: Input should be greater than or equal to 1"),
        ({"stores": [1], "horizon": 3, "levels": [150]}, 422, "interval levels must be whole percents in 1..99"),
        ({"stores": [1], "horizon": 3, "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
        ({"stores": [1], "start": "2001-01-01", "end": "2001-01-05"}, 422, "outside the allowed range"),
        ({"stores": [1], "start": "2013-05-10", "end": "2013-05-01"}, 422, "is before the start"),
        ({"stores": [1, 2, 3, 4, 5, 6], "horizon": 90}, 413, "the limit is 400 per request"),
        ({"stores": [1], "horizon": 30, "samples": 5000}, 413, "the limit is 100,000 draws"),
        ({"stores": [1], "horizon": 3, "covariates": [{"store": 1, "date": "2013-06-01", "promo": 2}]}, 422, "promo"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_detail_naming_what_was_wrong(client, body, status, words):
    reply = client.post("/v1/forecast/interval", json=body)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["detail"] and "Traceback" not in reply.text


def test_a_failure_inside_is_a_500_with_a_message_not_a_traceback(served, monkeypatch):
    app = create_app(Holder(lambda: served))
    monkeypatch.setattr(export, "parts", lambda *a, **k: 1 / 0)
    reply = TestClient(app, raise_server_exceptions=False).post(
        "/v1/forecast/point", json={"stores": [1], "horizon": 2}
    )
    assert reply.status_code == 500 and reply.json() == {
        "detail": "the server failed to answer (ZeroDivisionError); the details are in its log"
    }


def test_a_reload_swaps_the_fit_for_later_requests_and_a_broken_one_keeps_the_old(served):
    fits = iter([served, ServedFit("feedbeef", served.result, served.cube, served.record, None)])
    holder = Holder(lambda: next(fits))
    app = TestClient(create_app(holder))
    assert app.get("/health").json()["fit"] == "0123abcd"
    assert holder.reload() is True
    assert app.get("/health").json()["fit"] == "feedbeef"
    assert holder.reload() is False  # the iterator is spent: opening fails, the old fit stays
    assert app.get("/health").json()["fit"] == "feedbeef"
