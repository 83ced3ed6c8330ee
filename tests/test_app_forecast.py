"""The Forecast page through AppTest: no fit, per-store bands, total, one day's density, the promo
what-if, CSV, and forecasts cached so that chart options never recompute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from app_helpers import chart, fitted_app, open_page, small_demo, texts

from ui.session import fit_results

PAGE = "pages/forecast.py"
TAB = "w.fc.tab"


@pytest.fixture
def app(monkeypatch, tmp_path):
    return fitted_app(monkeypatch, tmp_path, PAGE)


def open_tab(at, label_start: str):
    label = next(t.label for t in at.tabs if t.label.startswith(label_start))
    at.session_state[TAB] = label
    return at.run()


def test_without_a_fit_the_page_says_so_and_links_to_fitting(monkeypatch, tmp_path):
    small_demo(monkeypatch, tmp_path)
    at = open_page(PAGE)
    assert not at.exception
    assert "No current fit yet" in at.info[0].value
    assert at.get("page_link")[0].proto.page == "fit"
    assert not at.get("plotly_chart")


def test_store_panels_show_history_bands_and_the_horizon(app):
    assert not app.exception and not app.error
    assert app.multiselect(key=next(m.key for m in app.multiselect)).value == [1, 2, 3]
    figure = chart(app, "fc.stores")
    names = {t.get("name") for t in figure["data"]}
    assert {"90% interval", "50% interval", "Forecast mean", "Actual sales", "Closed", "Promo day"} <= names
    titles = [a["text"] for a in figure["layout"]["annotations"] if a["text"].startswith("Store ")]
    assert titles == ["Store 1", "Store 2", "Store 3"]
    assert any(s.get("fillcolor", "").startswith("rgba(46,160,67") for s in figure["layout"]["shapes"])


def forecast_table(at) -> pd.DataFrame:
    open_tab(at, "Table")
    assert not at.exception
    return at.dataframe[0].value


def test_promo_what_if_raises_future_weekdays_only(app):
    end = pd.Timestamp("2013-07-19")  # the 200-day demo's last day
    off = forecast_table(app)
    app.toggle(key="w.fc.promo").set_value(True)
    app.run()
    on = forecast_table(app)
    assert list(off["date"]) == list(on["date"])
    past = off["date"] <= end
    assert np.allclose(off.loc[past, "mean"], on.loc[past, "mean"])  # recorded days never change
    future_weekdays = (off["date"] > end) & (off["date"].dt.day_of_week < 5)
    assert on.loc[future_weekdays, "promo"].all() and not off.loc[future_weekdays, "promo"].any()
    lift = on.loc[future_weekdays, "mean"].to_numpy() / off.loc[future_weekdays, "mean"].to_numpy()
    assert np.median(lift) > 1.1
    assert app.get("download_button")


def test_future_sundays_of_stores_closed_on_sundays_are_expected_closed(app):
    table = forecast_table(app)
    future_sundays = (table["date"] > pd.Timestamp("2013-07-19")) & (table["date"].dt.day_of_week == 6)
    assert future_sundays.any()
    assert (~table.loc[future_sundays, "open"]).all()
    assert (table.loc[future_sundays, "mean"] == 0).all()


def test_total_and_one_day_density(app):
    open_tab(app, "Total")
    assert not app.exception
    total = chart(app, "fc.total")
    assert "Sum over 20 stores" in total["layout"]["title"]["text"]
    open_tab(app, "One store-day")
    assert not app.exception and not app.error
    density = chart(app, "fc.day")
    assert density["data"][0]["type"] == "histogram"
    labels = [m.label for m in app.metric]
    assert "Mean" in labels and "90 % interval" in labels


def test_chart_options_reuse_the_cached_forecast(app, monkeypatch):
    calls = []
    real = fit_results.forecast

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_results, "forecast", counting)
    zoom = next(s for s in app.slider if s.label == "Zoom (dates)")
    first, last = zoom.value
    zoom.set_value((first + (last - first) / 2, last))
    app.run()
    assert not app.exception
    assert calls == []  # zooming slices the cached forecast
    app.multiselect(key=next(m.key for m in app.multiselect)).set_value([2, 5])
    app.run()
    assert calls, "other stores need a new forecast"
    assert [a["text"] for a in chart(app, "fc.stores")["layout"]["annotations"] if a["text"].startswith("Store ")] == [
        "Store 2",
        "Store 5",
    ]


def test_horizon_and_history_controls(app):
    app.select_slider(key="w.fc.horizon").set_value(0)
    app.selectbox(key="w.fc.history").set_value("All")
    app.run()
    assert not app.exception and not app.error
    zoom = next(s for s in app.slider if s.label == "Zoom (dates)")
    assert str(zoom.value[0]) == "2013-01-01" and str(zoom.value[1]) == "2013-07-19"
    assert app.toggle(key="w.fc.promo").disabled  # nothing after the data to switch promo on
    assert "Current fit" in texts(app.caption)
