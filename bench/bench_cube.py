"""Benchmark: load the real Rossmann files and build the full store x day cube.

    python bench/bench_cube.py [--data-dir DIR] [--runs 3] [--profile]

Targets: at most 5 s and 1 GB peak memory. Each run is a fresh interpreter, so the
peak RSS (ru_maxrss of that process) is the run's own and not a maximum over earlier runs; the time
is the load + validate + cube build, imports excluded. Exits 1 when a target is missed, 2 when the
data is not there (a fresh clone has no ../shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "rossmann"
TARGET_SECONDS = 5.0
TARGET_MB = 1024.0
# What the full Rossmann cube must hold: a fast wrong answer is no benchmark.
EXPECTED = {"n_stores": 1115, "n_days": 942, "n_rows": 1_017_209, "n_closed": 172_817}


def child(data_dir: str) -> None:
    """One measured run; prints one JSON line."""
    import resource
    import time

    sys.path.insert(0, str(REPO))
    from bhm_core.data.sources import KaggleDirSource, load_dataset

    start = time.perf_counter()
    cube = load_dataset(KaggleDirSource(data_dir)).cube()
    seconds = time.perf_counter() - start
    summary = cube.summary()
    wrong = {k: summary[k] for k, v in EXPECTED.items() if summary[k] != v}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "wrong": wrong, "n_observed": summary["n_observed"]}))


def profile(data_dir: str) -> None:
    import cProfile
    import pstats

    sys.path.insert(0, str(REPO))
    from bhm_core.data.sources import KaggleDirSource, load_dataset

    profiler = cProfile.Profile()
    profiler.runcall(lambda: load_dataset(KaggleDirSource(data_dir)).cube())
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(20)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir_pos", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default=None, help=f"Kaggle-layout folder (default {DEFAULT_DATA})")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one run instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir or args.data_dir_pos or DEFAULT_DATA).expanduser().resolve()
    if not (data_dir / "store.csv").is_file():
        print(
            f"error: no Rossmann data in {data_dir} (expects train.csv(.gz) and store.csv); pass --data-dir",
            file=sys.stderr,
        )
        return 2
    if args.child:
        child(str(data_dir))
        return 0
    if args.profile:
        profile(str(data_dir))
        return 0

    runs = []
    for i in range(args.runs):
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--data-dir", str(data_dir)], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        run = json.loads(done.stdout.strip().splitlines()[-1])
        if run["wrong"]:
            print(f"error: the cube does not match the Rossmann facts: {run['wrong']}", file=sys.stderr)
            return 1
        print(f"run {i + 1}: {run['seconds']:.2f} s, peak RSS {run['peak_mb']:.0f} MB")
        runs.append(run)
    seconds = statistics.median(r["seconds"] for r in runs)
    peak_mb = max(r["peak_mb"] for r in runs)
    ok_time, ok_memory = seconds <= TARGET_SECONDS, peak_mb <= TARGET_MB
    print(
        f"load + validate + cube of {data_dir.name} ({EXPECTED['n_stores']} stores x "
        f"{EXPECTED['n_days']} days, {runs[0]['n_observed']:,} observed cells)"
    )
    print(f"median time   {seconds:6.2f} s   target <= {TARGET_SECONDS:.0f} s    {'ok' if ok_time else 'OVER'}")
    print(f"peak RSS      {peak_mb:6.0f} MB  target <= {TARGET_MB:.0f} MB {'ok' if ok_memory else 'OVER'}")
    print(
        json.dumps(
            {
                "median_seconds": round(seconds, 3),
                "peak_rss_mb": round(peak_mb, 1),
                "runs": len(runs),
                "ok": ok_time and ok_memory,
            }
        )
    )
    return 0 if ok_time and ok_memory else 1


if __name__ == "__main__":
    raise SystemExit(main())
