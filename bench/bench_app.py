"""Benchmark: the dashboard's responsiveness on the demo data.

    python bench/bench_app.py [--stores 200] [--days 942] [--launches 3] [--repeats 7] [--no-browser]

(a) start-up: seconds from launching `streamlit run app.py` (headless, a free port, a fresh fit
    folder) until the Data page's summary is visible in headless Debian chromium (Playwright).
    The browser is started before the clock runs; each launch is a new server process.
(b) with a cached fit (the first 20 stores, default settings, its forecasts already drawn once,
    a backtest and a new-store trial run once): server time of one rerun after switching page
    (AppTest `switch_page(page).run()`), and of switching the stores shown on the Forecast page
    between sets seen before; median of repeats. Also reported, not targets: showing stores never
    shown before (new posterior samples), and the backtest / new-store trial from click to shown.
(c) a 50-store fit with the default settings through the app path (Stores picks, Model & fit,
    the Fit button, the background job, collected on the next rerun), in a fresh fit folder: the
    first in this process (programs from JAX's persistent compilation cache) and a second one with
    another seed (the compiled program in memory).
(d) after that first fit and once the background compilation of the common fit programs is done
    (ui.session.warmup.fit_programs; its duration is reported), fits of other sets of 1 to 50
    stores through the Fit button: seconds from the click to the first chunk of steps done, to the
    fit saved (its steps over), and to the job's end (the Forecast page's first view drawn too).

Targets: (a) <= 5 s, (b) <= 0.3 s, (c) <= 5 s, (d) first steps <= 1 s and the fit <= 3 s.
Prints a table; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGETS = {"startup": 5.0, "switch": 0.3, "fit50": 5.0, "first_step": 1.0, "fit_any": 3.0}
OTHER_SIZES = (1, 3, 8, 13, 20, 27, 35, 44, 50)
PAGES = (
    "pages/data.py",
    "pages/stores.py",
    "pages/fit.py",
    "pages/forecast.py",
    "pages/effects.py",
    "pages/baselines.py",
    "pages/new_stores.py",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# (a) start-up in a real browser


def startup_once(browser, env: dict) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the server writes to it until it is stopped
    began = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.perf_counter() - began > 60:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start:\n{log.read().decode()[-2000:]}")
            time.sleep(0.05)
        healthy = time.perf_counter() - began
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(url)
        page.get_by_text("Observed cells").first.wait_for(timeout=60_000)  # the summary's metrics
        usable = time.perf_counter() - began
        page.get_by_text("Coverage by store and day").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        chart = time.perf_counter() - began
        page.close()
        return {"health": healthy, "usable": usable, "chart": chart}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def bench_startup(env: dict, launches: int) -> dict | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("(a) skipped: needs playwright and a chromium binary (apt install chromium)")
        return None
    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(launches):
            runs.append(startup_once(browser, env))
        browser.close()
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"runs": runs}


# ----------------------------------------------------------------------------------------------
# (b) and (c) through AppTest, in this process


def _timed_run(at) -> float:
    began = time.perf_counter()
    at.run()
    return time.perf_counter() - began


def _wait_fit(at, state):
    job = at.session_state.get(state.FIT_JOB, None)
    if job is not None:
        job.wait(600)
    return job


def _fit(at, state, steps=None, seed=None) -> tuple[float, object]:
    """Press Fit on Model & fit; seconds from the click to the rerun that shows the fit."""
    if seed is not None:
        at.number_input(key=f"{state.W_SVI}.seed").set_value(seed)
        at.run()
    button = next(b for b in at.button if b.label.startswith("Fit "))
    began = time.perf_counter()
    button.click()
    at.run()
    job = _wait_fit(at, state)
    at.run()
    return time.perf_counter() - began, job


def bench_app(repeats: int) -> dict:
    from streamlit.testing.v1 import AppTest

    from ui.session import state

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
    out = {}
    # (c) 50 stores, default settings, through the Stores picks and the Fit button.
    at.session_state[state.SELECTED_STORES] = list(range(1, 51))
    at.session_state[state.W_STORE_PICKER] = list(range(1, 51))
    at.switch_page("pages/fit.py").run()
    seconds, job = _fit(at, state)
    meta = job.outcome.result.meta
    out["fit50_first"] = {
        "click_to_shown": seconds,
        "job": job.seconds,
        "compile": meta.get("compile_seconds", 0.0),
        "steps": meta.get("steps"),
    }
    seconds, job = _fit(at, state, seed=1)
    meta = job.outcome.result.meta
    out["fit50_again"] = {
        "click_to_shown": seconds,
        "job": job.seconds,
        "compile": meta.get("compile_seconds", 0.0),
        "steps": meta.get("steps"),
    }

    out["any_size"] = bench_other_sizes(at, state)

    # (b) a cached fit of the first 20 stores (the default when nothing is picked).
    at.session_state[state.SELECTED_STORES] = []
    at.session_state[state.W_STORE_PICKER] = []
    at.number_input(key=f"{state.W_SVI}.seed").set_value(0)
    at.run()
    _fit(at, state)
    for page in PAGES:  # first visits: forecasts, effects, tables computed once and cached
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    # A backtest and a new-store trial (default windows, the Model & fit settings), so that those
    # pages show their results while switching.
    for page, label, kind in (
        ("pages/baselines.py", "Run the backtest", "backtest"),
        ("pages/new_stores.py", "Fit and forecast", "coldstart"),
    ):
        at.switch_page(page).run()
        began = time.perf_counter()
        next(b for b in at.button if b.label.startswith(label)).click()
        at.run()
        key = f"{state.EVAL_JOB}.{kind}"
        job = at.session_state.get(key, None)
        if job is not None:
            job.wait(600)
        at.run()
        assert not at.exception and not at.error, (page, at.exception, at.error)
        out[kind] = time.perf_counter() - began
    switch = {page: [] for page in PAGES}
    for _ in range(repeats):
        for page in PAGES:
            at.switch_page(page)
            switch[page].append(_timed_run(at))
    out["switch"] = {page: statistics.median(t) for page, t in switch.items()}

    at.switch_page("pages/forecast.py").run()

    def show(ids) -> float:  # elements are rebuilt by every run: find the picker again
        next(m for m in at.multiselect if m.key.startswith("w.fc.stores")).set_value(ids)
        seconds = _timed_run(at)
        assert not at.exception and [int(s) for s in at.multiselect[0].value] == ids, at.exception
        return seconds

    sets = ([1, 2, 3], [4, 5, 6])
    for ids in sets:  # draw both once
        show(ids)
    out["stores_seen"] = statistics.median(show(sets[i % 2]) for i in range(repeats * 2))
    out["stores_new"] = statistics.median(show([7 + 3 * i, 8 + 3 * i, 9 + 3 * i]) for i in range(3))
    return out


def _wait_for_programs() -> float:
    """Seconds waited for the background compilation of the common fit programs to end."""
    import threading

    began = time.perf_counter()
    for thread in threading.enumerate():
        if thread.name == "bhm-fit-programs":
            thread.join(900)
    return time.perf_counter() - began


def bench_other_sizes(at, state) -> dict:
    """(d): fits of other stores, each count once; the picks change through session state."""
    import numpy as np

    out = {"waited_for_programs": _wait_for_programs(), "fits": {}}
    stores = np.arange(1, int(os.environ.get("BHM_DEMO_STORES", "200")) + 1)
    for n in OTHER_SIZES:  # a new random set each time: never a set fitted (and saved) before
        ids = sorted(np.random.default_rng(n).choice(stores, n, replace=False).tolist())
        at.session_state[state.SELECTED_STORES] = ids
        at.session_state[state.W_STORE_PICKER] = ids
        at.run()
        button = next(b for b in at.button if b.label.startswith("Fit "))
        began = time.perf_counter()
        button.click()
        at.run()
        job = at.session_state.get(state.FIT_JOB, None)
        first_step = saved = None
        while job is not None and not job.done:
            now = time.perf_counter() - began
            if first_step is None and job.trace:
                first_step = now
            if saved is None and job.stage() == "Drawing forecasts":
                saved = now
            time.sleep(0.01)
        ended = time.perf_counter() - began
        at.run()
        assert not at.exception, at.exception
        compile_seconds = job.outcome.result.meta.get("compile_seconds", 0.0) if job is not None else 0.0
        out["fits"][n] = {
            "first_step": ended if first_step is None else first_step,
            "saved": ended if saved is None else saved,
            "ended": ended,
            "compile": compile_seconds,
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--days", type=int, default=942)
    parser.add_argument("--launches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)

    fits = tempfile.mkdtemp(prefix="bhm-bench-fits-")
    env = {**os.environ, "BHM_DEMO_STORES": str(args.stores), "BHM_DEMO_DAYS": str(args.days), "BHM_FIT_DIR": fits}
    os.environ.update({k: env[k] for k in ("BHM_DEMO_STORES", "BHM_DEMO_DAYS", "BHM_FIT_DIR")})
    try:
        startup = None if args.no_browser else bench_startup(env, args.launches)
        app = bench_app(args.repeats)
    finally:
        shutil.rmtree(fits, ignore_errors=True)

    rows = []
    if startup is not None:
        rows.append(("(a) start -> Data page summary visible (chromium)", startup["usable"], TARGETS["startup"]))
        print(
            f"(a) median of {args.launches} launches: health endpoint {startup['health']:.2f} s, "
            f"summary {startup['usable']:.2f} s, coverage chart {startup['chart']:.2f} s"
        )
    for page, seconds in app["switch"].items():
        rows.append((f"(b) switch to {page} (cached fit)", seconds, TARGETS["switch"]))
    rows.append(("(b) Forecast: switch shown stores (seen before)", app["stores_seen"], TARGETS["switch"]))
    rows.append(("    Forecast: stores never shown (new samples)", app["stores_new"], None))
    rows.append(("    Baselines: backtest of 20 stores (click to shown)", app["backtest"], None))
    rows.append(("    New stores: 3 stores, K = 7 (click to shown)", app["coldstart"], None))
    for name, label in (("fit50_first", "first in this process"), ("fit50_again", "again, seed 1")):
        fit = app[name]
        rows.append((f"(c) 50-store fit, defaults, {label}", fit["click_to_shown"], TARGETS["fit50"]))
        print(
            f"(c) {label}: job {fit['job']:.2f} s (compile {fit['compile']:.2f} s, "
            f"{fit['steps']} steps), click to shown {fit['click_to_shown']:.2f} s"
        )
    sizes = app["any_size"]
    print(f"(d) waited {sizes['waited_for_programs']:.1f} s for the background compilation after the first fit")
    for n, fit in sizes["fits"].items():
        rows.append((f"(d) {n}-store fit: click to first 25 steps done", fit["first_step"], TARGETS["first_step"]))
        rows.append((f"(d) {n}-store fit: click to fit saved", fit["saved"], TARGETS["fit_any"]))
        rows.append((f"    {n}-store fit: with the first forecasts drawn", fit["ended"], None))
    print(f"\ndemo {args.stores} stores x {args.days} days, {os.cpu_count()} cpus")
    print(f"{'what':58} {'measured':>10} {'target':>8}  ok")
    missed = 0
    for what, value, target in rows:
        ok = "" if target is None else ("yes" if value <= target else "NO")
        missed += ok == "NO"
        shown_target = "" if target is None else f"{target:.2f} s"
        print(f"{what:58} {value:>8.3f} s {shown_target:>8}  {ok}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
