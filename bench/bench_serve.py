"""The HTTP service under a bounded load: a real `python -m bhm_core serve` on 127.0.0.1, async clients.

    .venv/bin/python bench/bench_serve.py [--data-dir ../shared/data/rossmann] [--requests 800] [--workers 1]

Fits the data (Rossmann when the folder is there, else the 200-store demo) into a temporary fit
folder, starts the server on a free port of 127.0.0.1, and sends `--requests` interval requests (one
store x 42 days, 500 draws, a store and seed per request) from 16 concurrent httpx clients, then one
50-store density request; stops the server whatever happens. Prints p50 / p99 latency, requests per
second and the density request's time (targets: 30 ms, 150 ms, 100 requests/s, 1 s), and a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rossmann"
CLIENTS = 16
TIME_LIMIT = 120  # seconds the load may run at most


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fit(data_dir: str | None, folder: str) -> dict:
    source = ["--data-dir", data_dir] if data_dir else ["--demo-stores", "200"]
    done = subprocess.run(
        [sys.executable, "-m", "bhm_core", "fit", *source, "--out", folder, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


async def load(url: str, stores: list[int], n_requests: int) -> tuple[list[float], float]:
    latencies, queue = [], list(range(n_requests))
    deadline = time.monotonic() + TIME_LIMIT

    async def client():
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while queue and time.monotonic() < deadline:
                i = queue.pop()
                body = {
                    "stores": [stores[i % len(stores)]],
                    "horizon": 42,
                    "levels": [50, 90],
                    "samples": 500,
                    "seed": i,
                }
                began = time.perf_counter()
                reply = await http.post("/v1/forecast/interval", json=body)
                reply.raise_for_status()
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return latencies, time.perf_counter() - began


def wait_compiled(url: str, server: subprocess.Popen, workers: int) -> None:
    """Until the server answers and has compiled its request shapes (asked often enough that
    every worker is likely to have said so)."""
    deadline, in_a_row = time.monotonic() + 600, 0
    while in_a_row < 4 * workers:
        if server.poll() is not None:
            sys.exit(f"the server stopped: {server.stdout.read()[-2000:]}")
        if time.monotonic() > deadline:
            sys.exit("the server did not compile its programs within 10 minutes")
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"{url}/health", timeout=2).json()["compiled"] else 0
        except httpx.HTTPError:
            in_a_row = 0
        time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--workers", type=int, default=1, help="server processes (one per core)")
    args = parser.parse_args()
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    with tempfile.TemporaryDirectory() as tmp:
        fitted = fit(data_dir, f"{tmp}/fits")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bhm_core",
                "serve",
                "--fit",
                fitted["key"],
                "--fits-dir",
                f"{tmp}/fits",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            cwd=ROOT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_compiled(url, server, args.workers)
            stores = httpx.get(f"{url}/v1/fit", timeout=30).json()["stores"]
            asyncio.run(load(url, stores, 2 * CLIENTS))  # the first requests of every client, not timed
            latencies, seconds = asyncio.run(load(url, stores, args.requests))
            began = time.perf_counter()
            httpx.post(
                f"{url}/v1/forecast/density", json={"stores": stores[:50], "horizon": 42, "bins": 30}, timeout=60
            ).raise_for_status()
            density = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(timeout=30)
    cuts = statistics.quantiles(latencies, n=100)
    figures = {
        "requests": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * cuts[98],
        "requests_per_second": len(latencies) / seconds,
        "density_50_stores_seconds": density,
        "data": "rossmann" if data_dir else "demo",
        "clients": CLIENTS,
        "workers": args.workers,
        "cores": os.cpu_count(),
    }
    print(
        f"{figures['requests']} interval requests (1 store x 42 days, 500 draws) from {CLIENTS} clients: "
        f"p50 {figures['p50_ms']:.0f} ms (target 30), p99 {figures['p99_ms']:.0f} ms (target 150), "
        f"{figures['requests_per_second']:.0f} requests/s (target 100); 50-store density {density:.2f} s (target 1)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
