"""Scale: virtual and synthetic series, bounded step memory, sparse minibatch steps, sharded
fits equal to unsharded ones, and chunked / streamed prediction equal to unchunked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from bhm_core.data.cells import FitData, observed_cells
from bhm_core.data.sources import DemoSource, load_dataset
from bhm_core.forecast.predict import forecast
from bhm_core.forecast.stream import forecast_to_parquet, posterior_to_parquet, read_stores, row_groups_for
from bhm_core.inference import optim
from bhm_core.inference.fit import all_sites, fit_cells
from bhm_core.inference.optim import Hyper, init_state
from bhm_core.inference.packing import batch_of, pack_by_store
from bhm_core.inference.programs import program as compiled_program
from bhm_core.inference.state import FitResult, FitState, gather_rows, pad_stores
from bhm_core.model.config import FitConfig, Priors
from bhm_core.model.guide import negative_elbo
from bhm_core.model.hierarchy import prior_arrays
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL
from bhm_core.model.start import initial_params
from bhm_core.scale.virtual import synthetic_series, virtual_series

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cube():
    return load_dataset(DemoSource(n_stores=12, n_days=300, seed=5)).cube()


# ---------------------------------------------------------------------------------------------
# virtual and synthetic series


def _cell_keys(store_ids, cells):
    return pd.DataFrame({"store": store_ids, "day": cells.day.astype(np.int64), "y": cells.y})


def test_virtual_split_keeps_every_observation_exactly_once(cube):
    series = virtual_series(cube, seed=3)
    data, origin = series.data, series.origin
    cells = data.cells
    real = origin["source_store"][cells.store]
    # every cell lies inside its segment, and a segment never straddles two real stores
    assert np.all((cells.day >= origin["first_day"][cells.store]) & (cells.day <= origin["last_day"][cells.store]))
    got = _cell_keys(real, cells).sort_values(["store", "day"]).reset_index(drop=True)
    base = observed_cells(cube)
    want = _cell_keys(cube.store_ids[base.store], base).sort_values(["store", "day"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)  # same cells, each once
    days = origin["last_day"] - origin["first_day"] + 1
    assert days.min() >= 7 * 7 and days.max() <= 22 * 7  # every store here spans more than 7 weeks
    # a store's segments follow each other without overlap (one without observations is dropped)
    same = origin["source_store"][1:] == origin["source_store"][:-1]
    assert np.all(origin["first_day"][1:][same] > origin["last_day"][:-1][same])
    assert data.n_stores >= 2 * cube.n_stores  # 300 days: about three segments per store


def test_virtual_series_are_seeded_and_reach_the_count_asked(cube):
    a, b = virtual_series(cube, 200, seed=1), virtual_series(cube, 200, seed=1)
    c = virtual_series(cube, 200, seed=2)
    assert a.data.n_stores == 200 and a.data.fingerprint == b.data.fingerprint
    np.testing.assert_array_equal(a.data.cells.store, b.data.cells.store)
    assert a.data.fingerprint != c.data.fingerprint
    assert a.data.info["passes"] > 1
    # each pass on its own holds every observation once (passes cut at other points)
    for p in range(a.data.info["passes"] - 1):
        rows = np.flatnonzero(a.origin["pass_"] == p)
        in_pass = np.isin(a.data.cells.store, rows)
        assert in_pass.sum() == cube.observed.sum()


def test_synthetic_series_are_seeded_narrow_and_sane():
    s = synthetic_series(300, seed=4)
    again = synthetic_series(300, seed=4)
    np.testing.assert_array_equal(s.data.cells.y, again.data.cells.y)
    cells, origin = s.data.cells, s.origin
    assert s.data.n_stores == 300 and np.all(np.diff(cells.store) >= 0)
    assert np.all(cells.y > 0) and cells.index.dtype == np.uint8 and cells.value.dtype == np.uint8
    assert np.all((cells.day >= origin["first_day"][cells.store]) & (cells.day <= origin["last_day"][cells.store]))
    assert not np.any(cells.index[:, 0] == 6)  # Sundays closed
    weeks = (origin["last_day"] - origin["first_day"] + 1) / 7
    assert weeks.min() >= 7 and weeks.max() <= 22
    assert cells.index.max() < len(s.data.feature_names)
    prior_arrays(Priors(), s.data.feature_groups)  # known feature groups


# ---------------------------------------------------------------------------------------------
# store minibatches at scale (the tests share one compiled program: same shapes and settings)

STATIC = {
    "chunk": 5,
    "schedule": "cosine",
    "optimizer": "adam",
    "particles": 1,
    "batch": 64,
    "likelihood": NEGATIVE_BINOMIAL,
    "mesh": None,
}


@pytest.fixture(scope="module")
def synth():
    return synthetic_series(500, seed=0)


def _runner_args(data: FitData, lr: float = 0.01):
    packed = pack_by_store(data.cells, data.n_stores, data.feature_groups)
    prior = prior_arrays(Priors(), data.feature_groups)
    params = pad_stores(
        initial_params(data.cells, data.n_stores, data.n_features, FitConfig(), prior, NEGATIVE_BINOMIAL),
        packed.n_rows,
    )
    # final_lr_fraction 1: the cosine schedule is a constant learning rate
    hyper = Hyper(np.float32(lr), np.float32(1.0), np.float32(10.0), np.int32(0), np.int32(1), np.int32(0), np.int32(1))
    # host copies: the program donates the state
    state = jax.tree.map(np.asarray, FitState(params, init_state("adam", params), np.int32(0)))
    return np.asarray(jax.random.PRNGKey(0)), state, {}, packed, prior, hyper


def test_step_memory_is_bounded_by_the_batch_not_the_stores(synth):
    """The compiled step's scratch memory is the same for 8x more stores; the parameters and
    Adam state are updated in place (donated)."""
    temp = []
    for data in (synth.data, synthetic_series(4000, seed=0).data):
        program, _ = compiled_program(_runner_args(data), STATIC)
        memory = program.memory_analysis()
        temp.append(memory.temp_size_in_bytes)
        assert memory.alias_size_in_bytes >= 0.9 * memory.output_size_in_bytes
    assert temp[1] == temp[0]


def test_sparse_minibatch_step_equals_the_dense_update(synth):
    """One engine step (gather distinct rows, Adam on them, scatter back) equals Adam on the full
    parameters with the batch's gradient, untouched rows restored; rows drawn twice included."""
    args = _runner_args(synth.data, lr=0.05)
    key, state, _, packed, prior, hyper = args
    params, opt_state = state.params, state.opt_state
    program, _ = compiled_program(args, STATIC)
    out = program(*args)  # one step (hyper.n_steps = 1)

    batch_key, elbo_key = jax.random.split(jax.random.fold_in(key, 0))
    rows = jax.random.randint(batch_key, (STATIC["batch"],), 0, synth.data.n_stores)
    assert len(np.unique(rows)) < len(rows)  # rows drawn twice are part of the check

    def loss(p):
        return negative_elbo(elbo_key, gather_rows(p, rows), batch_of(packed, rows), prior)

    grads = jax.jit(jax.grad(loss))(params)
    dense, _ = optim.apply("adam", hyper, "cosine", params, grads, opt_state, np.int32(0))
    touched = np.zeros(packed.n_rows, bool)
    touched[np.asarray(rows)] = True
    for name in ("theta_mu", "theta_sigma", "r_mu", "r_sigma"):
        np.testing.assert_allclose(out.state.params[name].loc, dense[name].loc, rtol=1e-5, atol=1e-6)
    for name in ("z", "w"):
        new, old, sparse = np.asarray(dense[name].loc), params[name].loc, np.asarray(out.state.params[name].loc)
        mask = touched.reshape(-1, *[1] * (new.ndim - 1))
        np.testing.assert_allclose(sparse, np.where(mask, new, old), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(sparse[~touched], old[~touched])


@pytest.fixture(scope="module")
def synth_fit(synth):
    return fit_cells(synth.data, FitConfig(steps=60, chunk_steps=STATIC["chunk"], batch_size=STATIC["batch"]))


def test_fit_cells_fits_series_without_a_cube(synth, synth_fit):
    assert synth_fit.params["z"].loc.shape == (synth.data.n_stores, synth.data.n_features)
    assert synth_fit.meta["series"] == "synthetic" and synth_fit.meta["batch_size"] == STATIC["batch"]
    assert np.all(np.isfinite(synth_fit.losses))
    # From the least-squares start the minibatch loss has little left to fall and a batch's noise
    # hides it: the loss must not rise beyond three standard errors of the two windows' means.
    first, last = synth_fit.losses[:10], synth_fit.losses[-10:]
    assert last.mean() < first.mean() + 3 * np.sqrt((first.var() + last.var()) / 10)
    promo = list(synth_fit.feature_names).index("promo")
    assert abs(synth_fit.params["theta_mu"].loc[promo] - synth.truth["theta_mu"][promo]) < 0.1


def test_scale_command_prints_its_figures(capsys, synth):
    from bhm_core.cli import main

    # 500 synthetic series, batch 64, 20 steps in chunks of 5: the program compiled above
    assert main(["scale", "--series", "500", "--batch", "64", "--steps", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("n_series", "n_cells", "seconds_per_step", "steps", "fit_seconds", "peak_rss_mb", "devices"):
        assert key in out
    assert out["n_series"] == 500 and out["n_cells"] == len(synth.data.cells.y) and out["steps"] == 20
    assert out["devices"] == 1 and out["source"] == "synthetic" and out["seconds_per_step"] > 0
    assert main(["scale", "--series", "0"]) == 2


# ---------------------------------------------------------------------------------------------
# several devices: run in a fresh interpreter with 4 forced CPU devices

SHARDED = r"""
import json, numpy as np
from bhm_core.model.config import FitConfig
from bhm_core.inference.fit import fit
from bhm_core.data.sources import DemoSource, load_dataset
cube = load_dataset(DemoSource(n_stores=12, n_days=200, seed=5)).cube()
out = {}
for name, config in (("minibatch", FitConfig(steps=20, chunk_steps=10, batch_size=8)),
                     ("full", FitConfig(steps=20, chunk_steps=20))):
    one, four = fit(cube, config), fit(cube, config, devices=4)
    out[name] = {"devices": four.meta["devices"],
                 "param": max(float(np.max(np.abs(a - b))) for k in one.params
                              for a, b in zip(one.params[k], four.params[k])),
                 "loss": float(np.max(np.abs(one.losses - four.losses) / np.abs(one.losses)))}
print(json.dumps(out))
"""


def test_four_device_fit_equals_one_device_fit():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("minibatch", "full"):
        assert result[name]["devices"] == 4
        # Same seed, same minibatches: float rounding only, which Adam's normalised steps carry
        # into the parameters (each moves up to lr = 0.01 a step) more than into the loss; most
        # into those no cell informs (the dispersion's offset for the closed Sundays), whose whole
        # gradient is rounding noise.
        assert result[name]["param"] < 1e-2, result
        assert result[name]["loss"] < 1e-4, result


# ---------------------------------------------------------------------------------------------
# prediction in chunks and streamed to parquet (no fit needed: the least-squares start will do)


@pytest.fixture(scope="module")
def start_fit(cube):
    data = FitData.from_cube(cube)
    prior = prior_arrays(Priors(), data.feature_groups)
    params = initial_params(data.cells, data.n_stores, data.n_features, FitConfig(), prior, NEGATIVE_BINOMIAL)
    return FitResult(
        FitState(params, init_state("adam", params), np.int32(0)),
        all_sites(),
        np.zeros(1),
        cube.store_ids,
        data.feature_names,
        data.feature_groups,
        Priors(),
        FitConfig(),
        data.fingerprint,
    )


def _window(cube):
    return dict(first=cube.dates[-10], last=cube.dates[-1], n_samples=40, seed=3)


def test_chunked_prediction_equals_unchunked(cube, start_fit):
    a = forecast(start_fit, cube, cube.store_ids[:4], chunk_stores=2, **_window(cube))
    b = forecast(start_fit, cube, cube.store_ids[:4], chunk_stores=4, **_window(cube))
    # The same random numbers (keyed by store id); programs of another chunk size may round the
    # last bit of a rate otherwise, which moves a rare draw by one unit of sales.
    pd.testing.assert_frame_equal(a, b, rtol=1e-3)
    # a store's draws do not depend on which other stores are forecast with it: exactly, at one size
    c = forecast(start_fit, cube, cube.store_ids[[3, 0]], chunk_stores=2, **_window(cube))
    for store in cube.store_ids[[3, 0]]:
        pd.testing.assert_frame_equal(
            c[c["store"] == store].reset_index(drop=True), a[a["store"] == store].reset_index(drop=True)
        )


def test_streamed_forecast_reads_back_only_the_stores_shown(tmp_path, cube, start_fit):
    path = tmp_path / "forecast.parquet"
    written = forecast_to_parquet(start_fit, cube, path, chunk_stores=4, **_window(cube))
    assert written["row_groups"] == 3 and written["rows"] == cube.n_stores * 10
    shown = cube.store_ids[[1, 9]]
    got = read_stores(path, shown)
    want = forecast(start_fit, cube, cube.store_ids, chunk_stores=4, **_window(cube))
    want = want[want["store"].isin(shown)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    import pyarrow.parquet as pq

    assert row_groups_for(pq.ParquetFile(path), np.sort(shown)) == [0, 2]
    assert read_stores(path, [10**6]).empty
    assert not list(tmp_path.glob(".tmp-*"))


def test_posterior_summaries_stream_without_a_cube(tmp_path, synth_fit):
    written = posterior_to_parquet(synth_fit, tmp_path / "post.parquet", n_samples=50, chunk_stores=128)
    assert written["row_groups"] == 4 and written["rows"] == 500 * (len(synth_fit.feature_names) + 1)
    part = read_stores(tmp_path / "post.parquet", [3, 400])
    assert set(part["store"]) == {3, 400}
    assert np.all(part["lo_90"] <= part["mean"]) and np.all(part["mean"] <= part["hi_90"])
