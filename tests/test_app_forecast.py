"""The Forecast page through AppTest: no fit, per-store bands, total, one day's density, the calendar
ahead, the what-ifs (promo days, another fit), the table and its CSVs, and forecasts cached so that
chart options never recompute."""

from __future__ import annotations

import pandas as pd
import pytest
from app_helpers import button, chart, fitted_app, open_page, small_demo, texts, wait_for_job

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


END = pd.Timestamp("2013-07-19")  # the 200-day demo's last day


def test_the_table_is_named_for_people_and_the_csv_has_every_fitted_store(app):
    table = forecast_table(app)
    for column in (
        "Store",
        "Date",
        "Actual sales (€)",
        "Forecast mean (€)",
        "50 % interval, low (€)",
        "90 % interval, high (€)",
        "Calendar from",
    ):
        assert column in table.columns, column
    assert (table["Forecast mean (€)"] == table["Forecast mean (€)"].round(0)).all()
    dates = pd.to_datetime(table["Date"])
    assert set(table.loc[dates <= END, "Calendar from"]) == {"recorded"}
    assert set(table.loc[dates > END, "Calendar from"]) <= {"estimated", "inferred", "default"}
    labels = [b.label for b in app.get("download_button")]
    assert "Download all 20 fitted stores as CSV" in labels and "Download what is shown as CSV" in labels
    assert "public holidays inferred from each store's recorded holidays" in texts(app.caption)


def test_promo_what_if_against_the_plan(app):
    open_tab(app, "What if: promo")
    assert not app.exception and not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Uplift"].startswith("+") and float(metrics["Uplift in %"].split()[0]) > 5
    table = app.dataframe[0].value
    assert table["Store"].iloc[0] == "All fitted stores" and len(table) == 21
    low, high = table["Uplift 90 % interval, low (€)"].iloc[0], table["Uplift 90 % interval, high (€)"].iloc[0]
    assert 0 < low < table["Uplift (€)"].iloc[0] < high  # a promo surely lifts sales
    names = {t.get("name") for t in chart(app, "wi.promo")["data"]}
    assert {"Plan", "Promo on (what-if)"} <= names
    # Only some stores and days: the other stores' uplift is exactly 0 (paired draws).
    app.multiselect(key=next(m.key for m in app.multiselect if m.label == "Stores of the plan")).set_value([2])
    app.run()
    table = app.dataframe[0].value
    others = table[~table["Store"].isin(["All fitted stores", "2"])]
    assert (others["Uplift (€)"] == 0).all() and table.set_index("Store").loc["2", "Uplift (€)"] > 0
    assert [b.label for b in app.get("download_button")] == ["Download the uplift as CSV"]


def test_another_fit_what_if_compares_before_and_after_a_prior_change(app):
    open_tab(app, "What if: another fit")
    assert "Fit these stores with other priors" in texts(app.caption)
    button(app, "Widen the weekday prior").click()
    app.run()
    wait_for_job(app)
    open_tab(app, "What if: another fit")
    assert not app.exception and not app.error
    assert "Over the 42 days ahead" in texts(app.markdown)
    table = app.dataframe[0].value
    assert table["Store"].iloc[0] == "All fitted stores"
    assert set(table["Larger than the forecast's uncertainty"]) <= {"yes", "no"}
    assert any(t.get("name", "").startswith("current fit") for t in chart(app, "wi.fits")["data"])


def test_future_sundays_of_stores_closed_on_sundays_are_expected_closed(app):
    table = forecast_table(app)
    dates = pd.to_datetime(table["Date"])
    future_sundays = (dates > END) & (dates.dt.day_of_week == 6)
    assert future_sundays.any()
    assert (~table.loc[future_sundays, "Open"]).all()
    assert (table.loc[future_sundays, "Forecast mean (€)"] == 0).all()


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
    assert "Current fit" in texts(app.caption)
    open_tab(app, "What if: promo")
    assert "a promo plan is about the days after the data" in texts(app.info)
