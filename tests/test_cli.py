"""The command line checks every value before any work, and says what is wrong in one line."""

import json
import os

import pytest

from bhm_core.cli import commands, main
from bhm_core.cli.options import MAX_SAMPLE_DAYS, MAX_SAMPLES
from bhm_core.data.sources import DEFAULT_MAX_BYTES
from bhm_core.errors import FitDivergedError

DEMO = ["--demo-stores", "6", "--demo-days", "120"]
BACKTEST = ["backtest", "--cutoff", "2013-04-01", "--horizon", "14"]
COLD = ["coldstart", "--new-stores", "2", "--known-days", "7"]


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if any data is loaded: the checks must come first."""
    loaded = []
    monkeypatch.setattr(commands, "load_dataset", lambda *a, **k: loaded.append(a) or pytest.fail("data loaded"))
    return loaded


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize(
    "args, words",
    [
        ([*BACKTEST, "--samples", "0"], ["--samples", "from 1 to 10,000", "got 0"]),
        ([*BACKTEST, "--samples", "-5"], ["--samples", "got -5"]),
        ([*BACKTEST, "--samples", "100000000"], ["--samples", "got 100,000,000"]),
        ([*BACKTEST, "--samples", "many"], ["--samples", "whole number", "'many'"]),
        (["backtest", "--cutoff", "2013-04-01", "--horizon", "100", "--samples", "5000"], ["samples", "memory"]),
        ([*BACKTEST, "--steps", "0"], ["--steps", "got 0"]),
        ([*BACKTEST, "--lr", "0"], ["--lr", "above 0"]),
        ([*BACKTEST, "--lr", "-0.1"], ["--lr", "above 0"]),
        ([*BACKTEST, "--lr", "nan"], ["--lr"]),
        ([*BACKTEST, "--seed", "-1"], ["--seed", "got -1"]),
        ([*BACKTEST, "--stores", "0"], ["--stores", "at least 1"]),
        ([*BACKTEST, "--optimizer", "sgd"], ["--optimizer", "clipped_adam"]),
        (["backtest", "--cutoff", "2013-04-01", "--horizon", "0"], ["--horizon", "got 0"]),
        (["backtest", "--cutoff", "2013-02-30", "--horizon", "7"], ["cutoff must be a date", "2013-02-30"]),
        (["backtest", "--cutoff", "20130401", "--horizon", "7"], ["cutoff must be a date"]),
        (["backtest", "--horizon", "7"], ["required: --cutoff"]),
        ([*COLD, "--samples", "0"], ["--samples"]),
        (["coldstart", "--new-stores", "0", "--known-days", "7"], ["--new-stores", "at least 1"]),
        (["coldstart", "--new-stores", "2", "--known-days", "-1"], ["--known-days"]),
        (["fit", "--out", "x", "--steps", "-3"], ["--steps"]),
        (["fit", "--out", "x", "--stores", "1", "two"], ["--stores", "'two'"]),
        (["fit", "--stores", "1"], ["required: --out"]),
        (["info", "--max-mb", "0"], ["--max-mb", "above 0"]),
        (["info", "--max-mb", "inf"], ["--max-mb"]),
        (["info", "--data-dir", "/no/such/folder"], ["--data-dir /no/such/folder: folder not found"]),
        (["scale", "--series", "10", "--batch", "0"], ["--batch", "at least 1"]),
        (["scale", "--series", "10", "--lr", "11"], ["--lr", "at most 10"]),
        (["forecastt"], ["invalid choice: 'forecastt'"]),
    ],
)
def test_bad_values_exit_2_with_one_line_before_any_work(capsys, no_work, args, words):
    assert main([*args, "--json"]) == 2
    line = one_error_line(capsys)
    for word in words:
        assert word in line
    assert not no_work


def test_the_sample_limits_are_documented_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        f"1..{MAX_SAMPLES:,}" in text and f"{MAX_SAMPLE_DAYS:,}" in text and "--optimizer {adam,clipped_adam}" in text
    )


def test_an_out_folder_that_cannot_be_written_is_refused_before_the_fit(capsys, no_work, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["fit", *DEMO, "--out", str(blocker / "fits"), "--json"]) == 2
    assert f"--out {blocker / 'fits'}: cannot write there" in one_error_line(capsys)
    if os.geteuid() != 0:  # root writes anywhere: only a file in the way stops it
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["fit", *DEMO, "--out", str(locked), "--json"]) == 2
        assert "cannot write there" in one_error_line(capsys)
    later = tmp_path / "new" / "fits"
    assert main(["fit", *DEMO, "--out", str(later), "--steps", "0"]) == 2  # the values come first
    assert "--steps" in one_error_line(capsys) and not later.exists()


def kaggle_folder(path, rows=40):
    path.mkdir(exist_ok=True)
    lines = ["Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday"]
    lines += [f"1,{d % 7 + 1},2015-07-{d + 1:02d},{5000 + d},500,1,0,0,0" for d in range(min(rows, 28))]
    (path / "train.csv").write_text("\n".join(lines) + "\n")
    (path / "store.csv").write_text("Store,StoreType,Assortment,Promo2\n1,a,a,0\n")
    return path


def test_the_size_limit_is_a_setting_named_in_its_message(capsys, monkeypatch, tmp_path):
    folder = kaggle_folder(tmp_path / "data")
    assert main(["info", "--data-dir", str(folder), "--max-mb", "0.0001", "--json"]) == 2
    line = one_error_line(capsys)
    assert "train.csv: " in line and "limit of 104 bytes" in line
    assert line.endswith("raise it with --max-mb or BHM_MAX_MB, or split the file")
    monkeypatch.setenv("BHM_MAX_MB", "0.0001")
    assert main(["info", "--data-dir", str(folder), "--json"]) == 2
    assert "limit of 104 bytes" in one_error_line(capsys)
    assert main(["info", "--data-dir", str(folder), "--max-mb", "5", "--json"]) == 0  # the option wins
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["n_stores"] == 1
    monkeypatch.setenv("BHM_MAX_MB", "lots")
    assert main(["info", "--data-dir", str(folder), "--json"]) == 2
    assert "BHM_MAX_MB must be a number of MB above 0, got 'lots'" in one_error_line(capsys)


def test_the_default_limit_reads_1024_mb(capsys, monkeypatch, tmp_path):
    folder = kaggle_folder(tmp_path / "data")
    monkeypatch.delenv("BHM_MAX_MB", raising=False)
    with open(folder / "train.csv", "r+b") as handle:
        handle.truncate(DEFAULT_MAX_BYTES + 1)  # sparse: refused by its size, never read
    assert main(["info", "--data-dir", str(folder), "--json"]) == 2
    assert one_error_line(capsys).endswith(
        "above the limit of 1,024.0 MB for one file; raise it with --max-mb or BHM_MAX_MB, or split the file"
    )


@pytest.mark.parametrize("optimizer, hint", [("adam", "or use --optimizer clipped_adam"), ("clipped_adam", "")])
def test_the_optimizer_is_an_option_and_a_divergence_names_only_options(capsys, monkeypatch, optimizer, hint):
    from bhm_core.evaluation import backtest

    seen = []

    def diverge(cube, cutoff, horizon, *, config, **kwargs):
        seen.append(config)
        raise FitDivergedError("the fit diverged at step 7: use the optimizer clipped_adam", step=7)

    monkeypatch.setattr(backtest, "backtest", diverge)
    monkeypatch.setattr("bhm_core.inference.programs.enable_compilation_cache", lambda *a, **k: None)
    assert main([*BACKTEST, *DEMO, "--optimizer", optimizer, "--lr", "0.5", "--json"]) == 2
    line = one_error_line(capsys)
    assert seen[0].optimizer == optimizer and seen[0].learning_rate == 0.5
    assert line == f"error: the fit diverged at step 7: the loss became non-finite; lower --lr (now 0.5) {hint}".strip()


def test_a_save_that_fails_after_the_fit_is_one_line(capsys, monkeypatch, tmp_path):
    from bhm_core.artifacts import folders

    monkeypatch.setattr("bhm_core.inference.programs.enable_compilation_cache", lambda *a, **k: None)
    out = tmp_path / "fits"
    assert main(["fit", *DEMO, "--steps", "5", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["path"] == str(out / result["key"]) and not result["from_cache"]

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folders, "write_version", full_disk)
    assert main(["fit", *DEMO, "--steps", "6", "--out", str(out), "--json"]) == 2
    line = one_error_line(capsys)
    assert "cannot save fit" in line and "No space left on device" in line
