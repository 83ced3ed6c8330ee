"""`python -m bhm_core ... --json` from a benchmark, in a fresh process of this checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bhm(*argv: str) -> dict:
    """The command's JSON answer; the benchmark stops with the command's error when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "bhm_core", *argv, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        sys.exit(f"bhm_core {argv[0]} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
