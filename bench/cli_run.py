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
    return bhm_answer(*argv)[1]


def bhm_answer(*argv: str, accepted=(0,)) -> tuple[int, dict]:
    """(exit status, JSON answer) of a command whose status is one of `accepted` (a retrain's gate
    answers 3 when it keeps the champion); the benchmark stops with the command's error otherwise."""
    done = subprocess.run(
        [sys.executable, "-m", "bhm_core", *argv, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode not in accepted:
        sys.exit(f"bhm_core {argv[0]} failed: {done.stderr.strip()[-2000:]}")
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])
