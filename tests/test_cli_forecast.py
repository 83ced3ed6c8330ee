"""Settings files, forecasts as files and the real HTTP server, through the command line."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from server_helpers import post, serving

from bhm_core.cli import main
from bhm_core.model import settings as settings_file

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
DEMO = ["--demo-stores", "6", "--demo-days", "200"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A demo fit saved by the command line, made with a settings file."""
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "fit.toml"
    config.write_text("[fit]\nsteps = 30\n[features]\ntrend = false\n")
    code = main(["fit", *DEMO, "--config", str(config), "--out", str(folder / "fits"), "--json"])
    assert code == 0
    key = next(p.name for p in (folder / "fits").iterdir() if not p.name.startswith("."))
    return folder, key


def test_config_defaults_print_the_default_settings_as_toml(capsys):
    code, out, _ = run(capsys, "config", "--defaults")
    assert code == 0 and settings_file.from_toml(out) == settings_file.Settings()


def test_a_bad_settings_file_is_one_error_line_naming_the_file_and_key(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[fit]\nlearning_rate = 0\n")
    for argv in (["config", "--check", str(bad)], ["fit", *DEMO, "--config", str(bad), "--out", str(tmp_path)]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1
        assert err.startswith("error: bad.toml: fit.learning_rate = 0 is not allowed (allowed: (0, 10])")


def test_the_settings_file_drives_the_fit_and_flags_override_it(fitted):
    from bhm_core.artifacts import FitStore

    folder, key = fitted
    record = FitStore(folder / "fits").record(key)
    assert record["config"]["steps"] == 30 and record["spec"]["trend"] is False
    assert record["lineage"]["source"] == {"kind": "demo", "n_stores": 6, "n_days": 200, "seed": 0}


def test_priors_from_a_fit_are_a_settings_file_with_the_posterior(capsys, fitted):
    folder, key = fitted
    out = folder / "learnt.toml"
    code, stdout, _ = run(
        capsys, "priors", "--from-fit", key, "--fits-dir", str(folder / "fits"), "--out", str(out), "--json"
    )
    assert code == 0 and json.loads(stdout.splitlines()[-1])["fit"] == key
    learnt = settings_file.load(out)
    assert learnt.priors.promo != settings_file.Settings().priors.promo and learnt.features.trend is False


def test_forecast_files_hold_the_contract_columns_the_total_and_the_draws(capsys, fitted):
    folder, key = fitted
    out = folder / "out" / "forecast.csv"
    code, stdout, err = run(
        capsys,
        "forecast",
        "--fit",
        key,
        "--fits-dir",
        str(folder / "fits"),
        "--stores",
        "2",
        "1",
        "--horizon",
        "10",
        "--levels",
        "50",
        "80",
        "95",
        "--samples",
        "200",
        "--draws",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["fit"] == key and summary["n_rows"] == 20
    # the demo's German-style holidays identify each store's state: its days ahead are inferred or estimated
    assert set(summary["sources"]) <= {"inferred", "estimated"} and sum(summary["sources"].values()) == 20
    assert "stores 2 of 2" in err
    rows = pd.read_csv(out)
    assert list(rows.columns) == [
        "store",
        "date",
        "open",
        "mean",
        "median",
        "point",
        "lo_50",
        "hi_50",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        "source",
    ]
    total = pd.read_csv(summary["total_out"])
    draws = pd.read_parquet(summary["draws_out"])
    assert len(total) == 10 and len(draws) == 20 * 200 and set(draws.columns) == {"store", "date", "draw", "sales"}
    by_day = draws.groupby(["date", "draw"])["sales"].sum().groupby("date").mean().to_numpy()
    np.testing.assert_allclose(by_day, total["mean"], rtol=1e-9)


def test_json_and_parquet_formats(capsys, fitted):
    folder, key = fitted
    for fmt in ("json", "parquet"):
        out = folder / "out" / f"forecast.{fmt}"
        code, _, err = run(
            capsys,
            "forecast",
            "--fit",
            str(folder / "fits" / key),
            "--all",
            "--horizon",
            "3",
            "--samples",
            "50",
            "--out",
            str(out),
        )
        assert code == 0, err
        rows = json.loads(out.read_text())["rows"] if fmt == "json" else pd.read_parquet(out).to_dict("records")
        assert len(rows) == 18 and rows[0]["store"] == 1


@pytest.mark.parametrize(
    "extra, words",
    [
        ([], "give --stores ID ... or --all"),
        (["--all", "--horizon", "3", "--start", "2013-07-20"], "either --start and --end, or --horizon"),
        (["--stores", "99", "--horizon", "3"], "store(s) [99] are not in fit"),
        (["--all", "--start", "2001-01-01", "--end", "2001-01-03"], "outside the allowed range"),
        (["--all", "--horizon", "3", "--samples", "0"], "--samples: must be from 1 to 10,000"),
        (["--all", "--horizon", "300", "--samples", "5000"], "draws per store, above 250,000"),
    ],
)
def test_bad_forecast_requests_are_one_error_line(capsys, fitted, extra, words):
    folder, key = fitted
    code, _, err = run(
        capsys, "forecast", "--fit", key, "--fits-dir", str(folder / "fits"), *extra, "--out", str(folder / "bad.csv")
    )
    assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_kaggle_submission_has_an_id_and_a_sale_per_test_row(capsys, tmp_path):
    from bhm_core.data.demo import generate_demo, to_kaggle_csv
    from bhm_core.data.sources import DemoSource

    data = tmp_path / "rossmann"
    to_kaggle_csv(generate_demo(DemoSource(n_stores=4, n_days=120, seed=1)), data)
    assert main(["fit", "--data-dir", str(data), "--steps", "20", "--out", str(tmp_path / "fits")]) == 0
    capsys.readouterr()
    key = next(p.name for p in (tmp_path / "fits").iterdir() if not p.name.startswith("."))
    days = pd.date_range("2013-05-01", periods=5).strftime("%Y-%m-%d")
    test = pd.DataFrame(
        [
            {
                "Id": i + 1,
                "Store": s,
                "DayOfWeek": 1,
                "Date": d,
                "Open": int(d != days[2]),
                "Promo": 0,
                "StateHoliday": "0",
                "SchoolHoliday": 0,
            }
            for i, (s, d) in enumerate((s, d) for s in (1, 3) for d in days)
        ]
    )
    test.to_csv(tmp_path / "test.csv", index=False)
    code, _, err = run(
        capsys,
        "forecast",
        "--fit",
        key,
        "--fits-dir",
        str(tmp_path / "fits"),
        "--kaggle-submission",
        str(tmp_path / "test.csv"),
        "--out",
        str(tmp_path / "submission.csv"),
        "--json",
    )
    assert code == 0, err
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert list(submission.columns) == ["Id", "Sales"] and submission["Id"].tolist() == list(range(1, 11))
    closed = test["Open"] == 0
    assert (submission.loc[closed.to_numpy(), "Sales"] == 0).all() and (
        submission.loc[~closed.to_numpy(), "Sales"] > 0
    ).all()


# ---------------------------------------------------------------------------------------------
# the real server: python -m bhm_core serve on a free port of 127.0.0.1, stopped by the test


@pytest.mark.server
def test_the_real_server_answers_as_the_forecast_command_does(capsys, fitted):
    folder, key = fitted
    with serving(folder / "fits", key) as (url, server):
        body = {"stores": [3], "horizon": 7, "levels": [50, 90], "samples": 150, "seed": 4}
        reply = post(f"{url}/v1/forecast/interval", body)
        out = folder / "served.csv"
        command = ["forecast", "--fit", key, "--fits-dir", str(folder / "fits"), "--stores", "3", "--horizon", "7"]
        options = ["--levels", "50", "90", "--samples", "150", "--seed", "4", "--out", str(out)]
        assert main(command + options) == 0
        capsys.readouterr()
        rows = pd.read_csv(out)
        np.testing.assert_allclose([r["hi_90"] for r in reply["rows"]], rows["hi_90"])
        server.send_signal(signal.SIGHUP)  # reload: the same fit again, requests keep being answered
        assert post(f"{url}/v1/forecast/point", {"stores": [1], "horizon": 2})["fit"] == key


@pytest.mark.server
def test_several_workers_answer_alike_and_are_replaced_one_by_one_on_a_reload(fitted):
    folder, key = fitted
    body = {"stores": [2], "horizon": 5, "samples": 100, "seed": 1}
    with serving(folder / "fits", key, "--workers", "2") as (url, server):
        first = [post(f"{url}/v1/forecast/point", body)["rows"] for _ in range(4)]
        server.send_signal(signal.SIGHUP)  # uvicorn starts new workers before it retires the old ones
        until = time.monotonic() + 5
        while time.monotonic() < until:  # requests are answered throughout, with the same numbers
            assert post(f"{url}/v1/forecast/point", body)["rows"] == first[0]
            time.sleep(0.5)
    assert all(rows == first[0] for rows in first)
