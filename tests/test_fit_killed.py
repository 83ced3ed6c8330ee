"""A fit process killed at random moments never leaves a fit that loads wrong, nor loses one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from bhm_core.artifacts import FitStore

REPO = Path(__file__).resolve().parent.parent
TRIALS = 20
COMMAND = [sys.executable, "-m", "bhm_core", "fit", "--demo-stores", "8", "--demo-days", "120", "--steps", "100"]


def run(out: Path, seed: int, env: dict, kill_at: float | None = None) -> list[float] | None:
    """A fit of `seed` into `out`: killed (SIGKILL) `kill_at` seconds after its start (None: the
    times of its first and last progress line and of its exit, after a whole run)."""
    start = time.perf_counter()
    args = [*COMMAND, "--seed", str(seed), "--out", str(out)]
    if kill_at is not None:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=kill_at)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        return None
    with subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) as proc:
        steps = [time.perf_counter() - start for line in proc.stdout if line.startswith("step")]
    assert proc.returncode == 0 and steps
    return [steps[0], steps[-1], time.perf_counter() - start]


def leaves(result) -> list:
    tree = (result.params, result.state.opt_state, result.state.step, result.losses, result.store_ids)
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def assert_same_fit(loaded, reference) -> None:
    """Every array equal (so every prediction too) and the same record-borne settings."""
    for a, b in zip(leaves(loaded), leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.config == reference.config and loaded.feature_names == reference.feature_names
    assert loaded.day_shock_sd == reference.day_shock_sd


@pytest.mark.slow
def test_a_fit_killed_at_random_moments_leaves_whole_fits_or_none(tmp_path):
    # A cache of its own (a kill while JAX writes one could spoil it) and one BLAS thread: a trial
    # costs start-up time, and idle BLAS threads spinning on a busy machine double it.
    env = {**os.environ, "BHM_JAX_CACHE": str(tmp_path / "jax_cache"), "JAX_PLATFORMS": "cpu"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out, refs = tmp_path / "fits", tmp_path / "reference"
    run(out, 0, env)  # the fit saved before the trials; also fills the compilation cache
    (before,) = FitStore(out).keys()
    ends = run(refs, 1, env)  # start-up ends at the first progress line, fitting at the last
    phases = list(zip([0.0, *ends[:2]], ends))  # start-up, fitting, saving and exit
    (key,) = FitStore(refs).keys()
    reference = {before: FitStore(out).load(before), key: FitStore(refs).load(key)}
    rng = np.random.default_rng(20)
    saved = []
    for trial in range(TRIALS):
        run(out, 1, env, kill_at=rng.uniform(*phases[trial % 3]))
        store = FitStore(out)
        present = store.keys()
        for name in present:  # every fit there loads, and is the fit its key names
            assert_same_fit(store.load(name), reference[name])
        assert before in present and set(present) <= {before, key}
        saved.append(key in present)
        store.delete(key)  # the next trial saves again rather than find this one
    # Some were killed before their save (how many got through it depends on the machine's load).
    assert sum(saved) < TRIALS
