"""Retraining with a gate, lineage and drift through the command line, on demo data written as
Kaggle folders: the champion fitted on the data without their last six weeks, then retrained on
all of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bhm_core.artifacts import FitStore
from bhm_core.cli import main
from bhm_core.retrain import Gate

ROOT = Path(__file__).resolve().parent.parent
NEW_DAYS = 42
RETRAIN = ["--steps", "15", "--samples", "100", "--holdout", "28"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """(old data folder, full data folder, fits folder, the champion's key), the champion current."""
    from bhm_core.data.demo import generate_demo, to_kaggle_csv
    from bhm_core.data.sources import DemoSource

    folder = tmp_path_factory.mktemp("retrain")
    full, old = folder / "full", folder / "old"
    to_kaggle_csv(generate_demo(DemoSource(n_stores=6, n_days=300, seed=2)), full)
    old.mkdir()
    train = pd.read_csv(next(full.glob("train.csv*")))
    dates = pd.to_datetime(train["Date"])
    train[dates <= dates.max() - pd.Timedelta(days=NEW_DAYS)].to_csv(old / "train.csv", index=False)
    (old / "store.csv").write_bytes((full / "store.csv").read_bytes())
    fits = folder / "fits"
    assert main(["fit", "--data-dir", str(old), "--steps", "30", "--out", str(fits), "--json"]) == 0
    (key,) = FitStore(fits).keys()
    FitStore(fits).set_current(key)
    return old, full, fits, key


def test_the_gate_passes_a_challenger_within_tolerance_with_calibrated_intervals():
    gate = Gate(holdout=42, tolerance=0.02, coverage_points=5)
    champion = {"rmspe": 0.100, "coverage_50": 0.50, "coverage_90": 0.90, "crps": 10.0}
    assert gate.verdict(champion, champion | {"rmspe": 0.1019})[0]
    worse, reason = gate.verdict(champion, champion | {"rmspe": 0.1021})
    assert not worse and "by more than 2%" in reason and "0.1020" in reason
    wide, reason = gate.verdict(champion, champion | {"rmspe": 0.09, "coverage_90": 0.96})
    assert not wide and "90 % intervals covered 96.0 %" in reason


@pytest.mark.parametrize(
    "holdout, tolerance, words",
    [(3, 0.02, "--holdout must be from 7 to 365"), (42, -0.1, "--tolerance must be from 0 to 1")],
)
def test_gate_settings_out_of_range_say_the_allowed_range(holdout, tolerance, words):
    from bhm_core.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        Gate(holdout=holdout, tolerance=tolerance)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--holdout", "3"], "--holdout: must be from 7 to 365"),
        (["--tolerance", "2"], "--tolerance: must be from 0 to 1"),
        (["--coverage-points", "-1"], "--coverage-points: must be from 0 to 50"),
    ],
)
def test_bad_retrain_options_are_one_error_line_and_exit_2(capsys, chain, extra, words):
    _, full, fits, key = chain
    code, _, err = run(capsys, "retrain", "--data-dir", str(full), "--from", key, "--fits-dir", str(fits), *extra)
    assert code == 2 and words in err and err.count("\n") == 1


def test_retrain_without_a_data_folder_is_an_error(capsys, chain):
    _, _, fits, key = chain
    code, _, err = run(capsys, "retrain", "--from", key, "--fits-dir", str(fits))
    assert code == 2 and "retrain needs --data-dir" in err


def test_no_new_days_keep_the_champion_with_exit_3(capsys, chain):
    old, _, fits, key = chain
    code, out, _ = run(capsys, "retrain", "--data-dir", str(old), "--from", key, "--fits-dir", str(fits), "--json")
    answer = json.loads(out.strip().splitlines()[-1])
    assert code == 3 and answer["decision"] == "kept" and "no new days" in answer["reason"]
    assert FitStore(fits).current_key() == key


def test_a_challenger_that_fails_the_gate_is_kept_out(capsys, chain):
    _, full, fits, key = chain
    before = set(FitStore(fits).keys())
    argv = ["retrain", "--data-dir", str(full), "--from", key, "--fits-dir", str(fits), *RETRAIN]
    code, out, _ = run(capsys, *argv, "--coverage-points", "0", "--tolerance", "0", "--json")
    answer = json.loads(out.strip().splitlines()[-1])
    assert code == 3 and answer["decision"] == "kept" and answer["fit"] == key
    assert set(answer["champion"]) >= {"rmspe", "coverage_50", "coverage_90", "crps"}
    assert set(answer["challenger"]) >= {"rmspe", "coverage_50", "coverage_90", "crps"}
    assert FitStore(fits).current_key() == key and set(FitStore(fits).keys()) == before


def test_a_promoted_fit_is_current_with_its_lineage_and_gate(capsys, chain):
    _, full, fits, key = chain
    argv = ["retrain", "--data-dir", str(full), "--from", key, "--fits-dir", str(fits), *RETRAIN]
    code, out, _ = run(capsys, *argv, "--tolerance", "1", "--coverage-points", "50", "--json")
    answer = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and answer["decision"] == "promoted" and answer["parent"] == key
    store = FitStore(fits)
    assert store.current_key() == answer["fit"] != key
    record = store.record(answer["fit"])
    assert record["parent"] == key and record["lineage"]["relation"] == "retrain"
    assert record["lineage"]["gate"]["challenger"] == answer["challenger"]
    assert record["meta"]["last_date"] > store.record(key)["meta"]["last_date"]

    code, out, _ = run(capsys, "fits", "lineage", answer["fit"], "--fits-dir", str(fits), "--json")
    chain_of = json.loads(out)["chain"]
    assert code == 0 and [c["fit"] for c in chain_of] == [answer["fit"], key]
    assert set(chain_of[0]) >= {"fit", "parent", "created", "label"}
    code, out, _ = run(capsys, "fits", "diff", key, answer["fit"], "--fits-dir", str(fits), "--json")
    changes = json.loads(out)
    assert code == 0 and not changes["data"]["same_data"] and changes["data"]["files_changed"] == ["train.csv"]
    code, out, _ = run(capsys, "fits", "list", "--fits-dir", str(fits), "--json")
    assert code == 0 and {row["key"] for row in json.loads(out)["fits"]} >= {key, answer["fit"]}
    store.set_current(key)  # the other tests start from the champion


def test_drift_answers_with_its_contract(capsys, chain):
    _, full, fits, key = chain
    code, out, _ = run(capsys, "drift", "--data-dir", str(full), "--fit", key, "--fits-dir", str(fits), "--json")
    answer = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and answer["recent_days"] == 56
    assert set(answer) >= {"stores_flagged", "effects_flagged", "inputs", "recent_days"}
    code, _, err = run(capsys, "drift", "--fit", key, "--fits-dir", str(fits), "--recent", "3")
    assert code == 2 and "--recent: must be from 7" in err


@pytest.mark.slow
def test_a_retrain_killed_mid_fit_leaves_the_current_fit_in_place(chain):
    _, full, fits, key = chain
    before = set(FitStore(fits).keys())
    argv = ["retrain", "--data-dir", str(full), "--from", key, "--fits-dir", str(fits), "--steps", "1500"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bhm_core", *argv, "--tolerance", "1", "--coverage-points", "50"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # killed while the passing challenger is continued on every day, just before its promotion
        while "promoting" not in (line := process.stderr.readline()):
            assert line, "the retrain ended before its promotion"
        time.sleep(1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    store = FitStore(fits)
    assert store.current_key() == key and store.load(key) is not None
    assert set(store.keys()) == before


@pytest.mark.server
def test_a_server_of_the_current_fit_follows_a_promotion(capsys, chain):
    from server_helpers import get, post, serving

    _, full, fits, key = chain
    store = FitStore(fits)
    with serving(fits, "current") as (url, _):
        assert get(f"{url}/health")["fit"] == key
        code, out, _ = run(capsys, "fit", "--data-dir", str(full), "--steps", "10", "--out", str(fits), "--json")
        newer = json.loads(out.strip().splitlines()[-1])["key"]
        assert code == 0 and store.current_key() == key  # a folder's later fits do not become current alone
        store.set_current(newer)
        deadline = time.monotonic() + 90
        while get(f"{url}/health")["fit"] != newer:  # requests keep being answered meanwhile
            assert time.monotonic() < deadline, "the server did not follow the current pointer"
            assert post(f"{url}/v1/forecast/point", {"stores": [1], "horizon": 2})["rows"]
            time.sleep(0.5)
    store.set_current(key)
