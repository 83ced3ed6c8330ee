"""Fits in several threads of one process at once, as the sessions of one dashboard server run
them: NumPyro's handler stack is shared by all threads, so tracing the model must take turns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A fresh process: nothing traced or compiled yet, so every thread's first fit traces the model.
CODE = """
import threading
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.inference.fit import fit
from bhm_core.forecast.prior_check import prior_predictive
from bhm_core.model.config import FitConfig, Priors

cubes = [load_dataset(DemoSource(n_stores=4 + 3 * i, n_days=60, seed=i)).cube() for i in range(4)]
errors, steps = [], []
start = threading.Barrier(len(cubes) + 1)

def work(cube):
    start.wait()
    try:
        steps.append(len(fit(cube, FitConfig(steps=5, chunk_steps=5)).losses))
    except Exception as exc:
        errors.append(repr(exc))

def check():
    start.wait()
    try:
        prior_predictive(cubes[0], Priors())
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=work, args=(c,)) for c in cubes] + [threading.Thread(target=check)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("errors", errors)
print("steps", sorted(steps))
"""


@pytest.mark.slow
def test_first_fits_in_several_threads_at_once_all_succeed(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "BHM_DATA_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "errors []", lines[-2][:2000]
    assert lines[-1] == "steps [5, 5, 5, 5]"
