"""The Baselines page through AppTest: the backtest window, a small backtest run in the
background with the Model & fit settings, its tables and charts, the cache, and bad windows."""

from __future__ import annotations

import datetime as dt

import pytest
from app_helpers import FIT_PAGE, STEPS, button, chart, evaluation_app, texts, wait_for_eval

from ui.charts import style
from ui.session import state

PAGE = "pages/baselines.py"
LAST_DAY = dt.date(2013, 7, 19)  # the 200-day demo's last day


def cutoff_input(at):
    return next(d for d in at.date_input if d.key.startswith("w.bt.cutoff"))


@pytest.fixture
def app(monkeypatch, tmp_path):
    return evaluation_app(monkeypatch, tmp_path, PAGE)


def run_backtest(at):
    button(at, "Run the backtest").click()
    at.run()
    return wait_for_eval(at, "backtest")


def test_renders_the_window_and_waits_for_a_run(app):
    assert not app.exception and not app.error
    assert cutoff_input(app).value == LAST_DAY - dt.timedelta(days=42)
    assert app.number_input(key="w.bt.horizon").value == 42
    assert not button(app, "Run the backtest (20 stores)").disabled
    assert f"{STEPS:,} steps" in texts(app.caption)  # the Model & fit settings, not the defaults
    assert "Run the backtest to compare" in texts(app.info)


def test_backtest_tables_charts_and_cache(app):
    at = run_backtest(app)
    assert not at.exception and not at.error, texts(at.error)
    assert "Backtest done" in texts(at.success)
    assert button(at, "Done for these inputs").disabled  # collected before the button is drawn
    table = next(d.value for d in at.dataframe if "Method" in d.value.columns)
    assert table["Method"].tolist()[0] == "Hierarchical model"
    # The headline in context: its spread over stores and the cases where pooling pays.
    assert "What the headline says." in texts(at.markdown) and "Pooling pays where" in texts(at.markdown)
    cases = next(d.value for d in at.dataframe if "Case" in d.value.columns)
    assert cases["Case"].iloc[0] == "All scored store-days"
    assert "Intervals (CRPS; 90 % coverage)" in set(cases["Case"])
    assert "Against the strongest peer (LightGBM)" in set(cases["Case"])
    assert {"Per-store regression", "Pooled regression", "Median by weekday × promo", "Seasonal naive"} <= set(
        table["Method"]
    )
    assert {"RMSPE", "MAPE", "MAE", "RMSE", "Coverage 50 %", "Coverage 90 %", "CRPS"} <= set(table)
    labels = [m.label for m in at.metric]
    assert "Lift over the best baseline" in labels
    # Where the error comes from: hindsight corrections only lower it (on these data).
    anatomy = next(d.value for d in at.dataframe if "Both known" in d.value.columns)
    assert anatomy["Method"].tolist()[0] == "Hierarchical model" and len(anatomy) == 2
    rmspe = table.set_index("Method").loc["Hierarchical model", "RMSPE"]
    assert anatomy["RMSPE"][0] == pytest.approx(float(rmspe.split()[0]), abs=0.05)
    known = anatomy[["Each store's level known", "Each day's chain-wide shock known", "Both known"]]
    assert (known.max(axis=1) <= anatomy["RMSPE"] + 1e-9).all()
    assert (known["Both known"] <= known.min(axis=1) + 1e-9).all()
    lift = chart(at, "bt.lift")
    assert lift["data"][0]["type"] == "histogram"
    assert "Daily total over the 20 stores" in texts(at.markdown)
    calibration = chart(at, "bt.calibration")
    names = [t["name"] for t in calibration["data"]]
    assert names[:2] == ["perfectly calibrated", "Hierarchical model"]
    assert "Per-store regression" in names and "Seasonal naive" not in names  # no intervals
    drill = chart(at, "bt.stores")
    by_name = {t.get("name"): t for t in drill["data"]}
    assert by_name["Hierarchical model"]["line"]["color"] == style.SERIES_COLOUR  # as on Forecast
    colours = {
        by_name[n]["line"]["color"]
        for n in ("Per-store regression", "Pooled regression", "Median by weekday × promo", "Seasonal naive")
    }
    assert len(colours) == 4 and style.SERIES_COLOUR not in colours
    assert "Actual sales" in by_name and "Sales before the cutoff" in by_name

    other = at.selectbox(key="w.bt.store").options[3]
    at.selectbox(key="w.bt.store").set_value(int(other.split(":")[0].split()[-1]))
    at.run()
    assert not at.exception
    # Coming back with the same inputs shows the cached evaluation at once: no new job.
    at.switch_page(FIT_PAGE).run()
    at.switch_page(PAGE).run()
    assert state.EVAL_JOB + ".backtest" not in at.session_state
    assert chart(at, "bt.calibration")
    assert button(at, "Done for these inputs").disabled


def test_cutoff_too_near_the_end_shows_the_allowed_range(app):
    cutoff_input(app).set_value(LAST_DAY - dt.timedelta(days=10))
    app.run()
    assert not app.exception
    message = texts(app.error)
    assert "after the last day of the data" in message and "2013-06-07" in message
    assert button(app, "Run the backtest").disabled
    app.number_input(key="w.bt.horizon").set_value(10)  # a horizon that fits makes it valid again
    app.run()
    assert not app.error and not button(app, "Run the backtest").disabled


def test_invalid_settings_on_model_and_fit_are_reported(app):
    at = app.switch_page(FIT_PAGE).run()
    at.number_input(key=f"{state.W_SVI}.learning_rate").set_value(0.0)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert "learning_rate" in texts(at.error)
    assert not [b for b in at.button if b.label.startswith("Run the backtest")]


def test_a_running_backtest_can_be_cancelled(app):
    at = app.switch_page(FIT_PAGE).run()
    at.number_input(key=f"{state.W_SVI}.steps").set_value(200_000)
    at.run()
    at.switch_page(PAGE).run()
    button(at, "Run the backtest").click()
    at.run()
    assert button(at, "Run the backtest").disabled  # one at a time
    button(at, "Cancel").click()
    at.run()
    at = wait_for_eval(at, "backtest", timeout=60)
    assert not at.exception
    assert "cancelled after" in texts(at.warning) and "nothing was scored" in texts(at.warning)
    assert not button(at, "Run the backtest").disabled  # nothing cached: it can run again


def test_lift_percent_reads_without_a_negative_zero():
    from ui.charts.evaluation import signed_percent

    assert [signed_percent(v) for v in (12.345, -3.21, -0.04, 0.0, 0.04, -0.06)] == [
        "+12.3 %",
        "-3.2 %",
        "0.0 %",
        "0.0 %",
        "0.0 %",
        "-0.1 %",
    ]
