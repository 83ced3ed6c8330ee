"""The real HTTP server for tests: `python -m bhm_core serve` on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.loads(reply.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


@contextlib.contextmanager
def serving(fits, fit, *extra):
    """`python -m bhm_core serve --fit FIT` on a free port of 127.0.0.1 until healthy (answering with
    that fit, unless FIT is `current`); stopped on leaving."""
    port = free_port()
    command = [sys.executable, "-m", "bhm_core", "serve", "--fit", fit, "--fits-dir", str(fits)]
    server = subprocess.Popen(
        [*command, "--port", str(port), *extra],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    health = json.loads(reply.read())
                    assert health["status"] == "ok" and (fit == "current" or health["fit"] == fit)
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read().decode()[-2000:]
                time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        try:  # workers still starting (compiling their first programs) stop once they are up
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
            raise
