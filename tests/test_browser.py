"""End to end: `streamlit run app.py` in a subprocess, driven by Playwright with Debian's chromium.

Screenshots of every page land in test-artifacts/ (git-ignored) for a human look.
Skipped, with the reason, where playwright or a chromium binary is missing; never downloads one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1400, "height": 2200}  # tall: Streamlit scrolls inside the page, not the page

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if CHROMIUM is None:
    pytest.skip(
        "no chromium binary on PATH (apt install chromium); browsers are never downloaded", allow_module_level=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(tmp_path_factory, **extra_env):
    """`streamlit run app.py` on a free port of 127.0.0.1 (its data and fits in temporary folders)."""
    port = free_port()
    env = {
        **os.environ,
        "BHM_DEMO_STORES": "60",
        "BHM_DEMO_DAYS": "942",
        "BHM_FIT_DIR": str(tmp_path_factory.mktemp("fits")),
        "BHM_DATA_ROOT": str(tmp_path_factory.mktemp("data")),
    }
    env.pop("BHM_PASSWORD", None)
    env.update(extra_env)
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"streamlit-{port}.log", "w")  # noqa: SIM115 - closed when the server stops
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
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def no_exceptions(page):
    assert page.locator('[data-testid="stException"]').count() == 0


def wait_for_chart(page, count=1, timeout=30_000):
    page.locator(".js-plotly-plot").nth(count - 1).wait_for(timeout=timeout)
    page.wait_for_timeout(800)  # let plotly finish drawing before a screenshot


def scroll_to(page, text: str) -> None:
    """Bring a heading to the top (Streamlit scrolls its main block, not the page)."""
    page.get_by_text(text).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(600)


FIT_TIMEOUT = 180_000  # a first fit of a new size compiles (seconds on this 2-core machine)


def pick_random_sample(page, n: int) -> None:
    """Press "Random sample of n" until the sidebar counts n picks: a click that lands while the
    page is still running its previous pass can be dropped by the browser's Streamlit client."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    for _ in range(3):
        page.get_by_role("button", name=f"Random sample of {n}").click()
        with contextlib.suppress(Exception):
            sidebar.get_by_text(f"Picked stores: {n}").wait_for(timeout=20_000)
            return
    raise AssertionError(f"the sidebar never counted {n} picked stores")


def fit_in_browser(page, steps: int) -> None:
    """On Model & fit: set the steps, press Fit, wait until the fit is current."""
    page.get_by_text("Prior predictive check").wait_for(timeout=30_000)
    field = page.get_by_role("spinbutton", name="Steps")
    field.fill(str(steps))
    field.press("Enter")
    page.wait_for_timeout(800)
    page.get_by_role("button", name=re.compile(r"^Fit \d+ stores?$")).click()
    page.get_by_text("Current fit:").wait_for(timeout=FIT_TIMEOUT)
    page.mouse.move(0, 0)


def test_a_deep_link_first_on_a_fresh_server_goes_through_the_app(server, browser):
    """The module's first test, so the server has not yet run app.py: Streamlit would run
    pages/effects.py on its own (file names in the sidebar, no status) without nav.route_through_app."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/effects")
    page.get_by_role("heading", name="Effects").first.wait_for(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Data: synthetic demo data").wait_for(timeout=30_000)  # app.py's status
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Model & fit" in nav and "new stores" not in nav  # our titles, not file names
    assert page.url.endswith("/effects")
    no_exceptions(page)
    page.close()


def test_pages_render_and_picks_carry_over(server, browser):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server)
    page.get_by_text("Coverage by store and day").wait_for(timeout=60_000)
    wait_for_chart(page)
    assert page.get_by_text("synthetic demo data (60 stores").first.is_visible()
    no_exceptions(page)
    page.screenshot(path=ARTIFACTS / "data.png")

    page.get_by_role("link", name="Stores", exact=True).click()
    page.get_by_text("60 of 60 stores match").wait_for(timeout=30_000)
    page.get_by_role("button", name="Random sample of 6").click()
    page.get_by_text("Sales history of the picked stores").wait_for()
    wait_for_chart(page)
    # The sidebar is drawn before the page runs and again after it: it already counts the sample.
    # (AppTest cannot show this: after its first run it executes pages/*.py without app.py.)
    assert "Picked stores: 6" in page.locator('[data-testid="stSidebar"]').inner_text()
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Picked stores")
    picker.get_by_role("combobox").click()
    page.keyboard.type("7")
    page.get_by_role("option", name="7", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(1500)
    panels = page.locator(".js-plotly-plot .annotation-text").filter(has_text=re.compile(r"^Store \d+$"))
    assert panels.count() == 7
    no_exceptions(page)
    page.mouse.move(0, 0)
    page.screenshot(path=ARTIFACTS / "stores.png")

    page.get_by_role("link", name="Data").click()
    page.get_by_text("Coverage by store and day").wait_for()
    assert "Picked stores: 7" in page.locator('[data-testid="stSidebar"]').inner_text()
    page.get_by_role("link", name="Stores", exact=True).click()
    wait_for_chart(page)
    assert picker.get_by_role("button", name=re.compile(r"^Remove \d+$")).count() == 7

    # Fit the 7 picks, then look at the forecast and the effects.
    page.get_by_role("link", name="Model & fit").click()
    page.get_by_text("Fitting the 7 stores picked").wait_for(timeout=30_000)
    fit_in_browser(page, steps=150)
    assert page.get_by_text(re.compile(r"^Fitted 7 stores in")).is_visible()
    no_exceptions(page)
    page.wait_for_timeout(800)
    page.screenshot(path=ARTIFACTS / "fit.png")

    # Cancel: a long fit stops at the next chunk of steps; the previous fit stays current.
    field = page.get_by_role("spinbutton", name="Steps")
    field.fill("200000")
    field.press("Enter")
    page.wait_for_timeout(800)
    page.get_by_role("button", name="Fit 7 stores").click()
    page.get_by_text(re.compile(r"Fitting: step [\d,]+ of 200,000")).wait_for(timeout=FIT_TIMEOUT)
    page.mouse.move(0, 0)
    page.wait_for_timeout(600)
    page.screenshot(path=ARTIFACTS / "fit_running.png")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text(re.compile(r"^Fit cancelled after [\d,]+ of 200,000 steps")).wait_for(timeout=60_000)
    assert page.get_by_role("button", name=re.compile("^Use the partial fit anyway")).is_visible()
    assert page.get_by_text(re.compile(r"New fit: [\d.]+ s")).is_visible()  # the 150-step fit
    no_exceptions(page)

    # A reload keeps the view: the URL holds the data, the picks and the fit.
    assert "stores=" in page.url and "fit=" in page.url and "source=demo-60-942-0" in page.url
    page.reload()
    page.get_by_text("Current fit:").wait_for(timeout=60_000)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Picked stores: 7" in sidebar and "Fit in use: 7 stores, 150 steps" in sidebar

    started = time.monotonic()
    page.get_by_role("link", name="Forecast").click()
    wait_for_chart(page, timeout=120_000)
    page.locator(".js-plotly-plot .annotation-text").filter(has_text=re.compile(r"^Store \d+$")).first.wait_for()
    print(f"forecast page ready in {time.monotonic() - started:.1f} s")
    no_exceptions(page)
    page.screenshot(path=ARTIFACTS / "forecast.png")
    page.get_by_role("tab", name="One store-day").click()
    page.get_by_text("posterior predictive draws").first.wait_for(timeout=120_000)
    wait_for_chart(page)
    page.screenshot(path=ARTIFACTS / "forecast_day.png")

    started = time.monotonic()
    page.get_by_role("link", name="Effects").click()
    page.get_by_text("Chain-wide effects").wait_for(timeout=60_000)
    wait_for_chart(page, count=3, timeout=60_000)
    print(f"effects page ready in {time.monotonic() - started:.1f} s")
    no_exceptions(page)
    page.screenshot(path=ARTIFACTS / "effects.png")
    page.get_by_text("Each dot is a store: its own least-squares").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / "effects_shrinkage.png")

    started = time.monotonic()  # back to the forecast: everything is cached now
    page.get_by_role("link", name="Forecast").click()
    wait_for_chart(page)
    print(f"forecast page again in {time.monotonic() - started:.1f} s")
    page.close()


def test_baselines_and_new_stores(server, browser):
    """A backtest and a new-store trial, each run in the background with the Model & fit steps."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/fit")
    page.get_by_text("Prior predictive check").wait_for(timeout=60_000)
    field = page.get_by_role("spinbutton", name="Steps")
    field.fill("100")
    field.press("Enter")
    page.wait_for_timeout(800)

    page.get_by_role("link", name="Baselines").click()
    page.get_by_text("100 steps").first.wait_for(timeout=30_000)
    _run_evaluation(
        page,
        re.compile(r"^Run the backtest"),
        r"^Backtest done in",
        "One store, every method",
        ("baselines", "baselines_store"),
    )

    page.get_by_role("link", name="New stores").click()
    page.get_by_text("Stores to treat as new").wait_for(timeout=30_000)
    _run_evaluation(
        page,
        "Fit and forecast the new stores",
        r"^New-store trial done in",
        "Forecast vs actual, store by store",
        ("new_stores", "new_stores_panels"),
    )

    page.get_by_role("spinbutton", name="Known days K").fill("5000")  # impossible: an error, no crash
    page.get_by_role("spinbutton", name="Known days K").press("Enter")
    page.locator('[data-testid="stAlertContentError"]').wait_for(timeout=20_000)
    assert "known days K = 5000" in page.locator('[data-testid="stAlertContentError"]').inner_text()
    no_exceptions(page)
    page.close()


def test_dark_theme_and_bad_folder(server, browser):
    page = browser.new_page(viewport=VIEWPORT, color_scheme="dark")
    page.goto(server)
    page.get_by_text("Coverage by store and day").wait_for(timeout=60_000)
    page.get_by_role("radio", name="Local folder").click()
    field = page.get_by_role("textbox", name="Folder with train.csv")
    field.fill("no/such/folder")  # under the data root, where folders may be read
    field.press("Enter")
    page.get_by_role("button", name="Load folder").click()
    alert = page.locator('[data-testid="stAlertContentError"]')
    alert.wait_for(timeout=20_000)
    assert "folder not found" in alert.inner_text()
    wait_for_chart(page)  # the demo data stays in use
    no_exceptions(page)
    page.screenshot(path=ARTIFACTS / "data_dark_error.png")
    page.close()


def test_dark_theme_fit_cache_forecast_and_effects(server, browser):
    """A second session: the same picks and settings load the saved fit instantly."""
    page = browser.new_page(viewport=VIEWPORT, color_scheme="dark")
    page.goto(f"{server}/fit")
    page.get_by_text("No stores picked: the fit uses").wait_for(timeout=60_000)
    page.get_by_role("link", name="Forecast").click()
    page.get_by_text("No current fit yet").wait_for(timeout=30_000)
    page.get_by_role("link", name="Go to Model & fit").wait_for(timeout=30_000)
    page.get_by_role("link", name="Stores", exact=True).click()
    page.get_by_text("60 of 60 stores match").wait_for(timeout=30_000)
    pick_random_sample(page, 6)
    wait_for_chart(page)
    page.get_by_role("link", name="Model & fit").click()
    fit_in_browser(page, steps=60)
    # same inputs again: from the cache (the button is back once the job's last phase is collected)
    try:
        page.get_by_role("button", name="Fit 6 stores").click(timeout=120_000)
    except Exception:
        page.screenshot(path=ARTIFACTS / "second_fit_missing.png", full_page=True)  # what the page showed
        raise
    page.get_by_text("From cache: instant").wait_for(timeout=30_000)
    page.mouse.move(0, 0)
    page.wait_for_timeout(600)
    no_exceptions(page)
    page.screenshot(path=ARTIFACTS / "fit_dark.png")
    for name in ("Forecast", "Effects"):
        page.get_by_role("link", name=name).click()
        wait_for_chart(page, timeout=120_000)
        page.wait_for_timeout(1500)
        no_exceptions(page)
        page.screenshot(path=ARTIFACTS / f"{name.lower()}_dark.png")
    page.close()


def _run_evaluation(page, button, done, section: str, shots: tuple) -> None:
    """Press an evaluation page's run button, wait for its result and charts, and screenshot the
    top of the page and `section` (shots: the two file names)."""
    started = time.monotonic()
    page.get_by_role("button", name=button).click()
    page.get_by_text(re.compile(done)).wait_for(timeout=FIT_TIMEOUT)
    print(f"{shots[0]} run in {time.monotonic() - started:.1f} s")
    wait_for_chart(page, count=3, timeout=60_000)
    page.mouse.move(0, 0)
    no_exceptions(page)
    page.screenshot(path=ARTIFACTS / f"{shots[0]}.png")
    scroll_to(page, section)
    page.screenshot(path=ARTIFACTS / f"{shots[1]}.png")


def test_a_password_comes_before_every_page(tmp_path_factory, browser):
    """A server with BHM_PASSWORD: the form first, whichever page is asked for; the page after."""
    with running_app(tmp_path_factory, BHM_PASSWORD="correct horse battery") as url:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/fit")
        page.get_by_text("Sales forecasting").first.wait_for(timeout=60_000)
        field = page.get_by_label("Password", exact=True)
        assert page.get_by_text("Model & fit").count() == 0  # no page, no menu
        field.fill("wrong")
        page.get_by_role("button", name="Enter").click()
        page.get_by_text(re.compile("^Wrong password")).wait_for(timeout=20_000)
        page.get_by_label("Password", exact=True).fill("correct horse battery")
        page.get_by_role("button", name="Enter").click()
        page.get_by_text("Prior predictive check").wait_for(timeout=60_000)
        assert page.url.endswith("/fit")
        no_exceptions(page)
        page.screenshot(path=ARTIFACTS / "password_then_fit.png")
        page.close()
