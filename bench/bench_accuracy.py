"""Benchmark: forecast accuracy of the hierarchical model against the baselines on Rossmann.

    python bench/bench_accuracy.py [--data-dir DIR] [--steps N] [--samples N] [--json-out FILE]
                                   [--features JSON]   # e.g. '{"season": false}': an ablation row
                                   [--likelihood log_student_t]   # another observation law

Backtests on all stores, horizon 42 days, at three cutoffs (2015-06-19, plus 2015-03-31 and
2014-12-15, each followed by 42 days of data; the last one's horizon holds Christmas and the 180
stores that return from their half-year gap), then the cold-start trial (115 new stores, 7 known
days, seed 0). Prints one table per experiment: RMSPE, coverage of the 50% and 90% intervals and
CRPS per method, with the fit's seconds (compilation included). The RMSPEs measured when the model
was first scored are printed next to them. Each backtest also prints where the error of the model
and of the best baseline comes from (evaluation.error_sources): the RMSPE left if each store's level
over the horizon, each day's chain-wide shock, or both were known in advance, and how the interval
of the chain's daily total held. Every method's row has its training seconds (``fit s``; the model's
fit without the forecast) and its RMSPE without the anomalous actuals (evaluation.anomalies), which
are listed under the table with their share of each method's squared error; 2014-11-15 as a cutoff
(``--cutoffs 2014-11-15``) is the case they were found on. The LightGBM peer (``gbm``) runs in every
backtest and in the cold start (trained on the other stores' whole history and the new stores' known
days). Exits 2 when the data is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "rossmann"
CUTOFFS = ("2015-06-19", "2015-03-31", "2014-12-15")
HORIZON = 42
COLD = {"new_stores": 115, "known_days": 7, "seed": 0}
# The first reference RMSPEs (cutoff 2015-06-19, all stores; cold start 115 stores x 7 days).
REFERENCE = {
    "2015-06-19": {"ols_log": 0.151, "median_dow_promo": 0.132, "hierarchical": 0.153},
    "coldstart": {"ols_log": 0.63, "mean": 0.40, "hierarchical": 0.31},
}
COLUMNS = ("rmspe", "coverage_50", "coverage_90", "crps")
METHOD_KEY = {"hierarchical": "hierarchical"}  # the model's name in the forecasts (predict.METHOD)
ANOMALY_CUTOFF = "2014-11-15"  # one store-day (store 652, 2014-11-22) decides every method's RMSPE


def _fmt(value, digits=4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:,.0f}"


def table(name: str, summary: dict, seconds: float, reference: dict) -> str:
    rows = {"hierarchical": summary["model"], **summary["baselines"]}
    anomalies = summary.get("anomalies", {})
    without = anomalies.get("rmspe_without", {})
    fit_seconds = {"hierarchical": summary["fit_seconds"], **summary.get("baseline_seconds", {})}
    lines = [
        f"\n## {name}: {summary['n_stores']} stores, {summary['n_scored_cells']:,} scored cells; "
        f"fit {summary['fit_seconds']:.1f} s (compile {summary['compile_seconds']:.1f} s, "
        f"{summary['steps']} steps); whole experiment {seconds:.1f} s",
        f"{'method':<18}{'rmspe':>13}{'w/o anomal.':>13}"
        + "".join(f"{c:>13}" for c in COLUMNS[1:])
        + f"{'fit s':>9}{'reference':>11}",
    ]
    for method, metrics in rows.items():
        ref = reference.get(method)
        key = METHOD_KEY.get(method, method)
        lines.append(
            f"{method:<18}{_fmt(metrics.get('rmspe')):>13}{_fmt(without.get(key)):>13}"
            + "".join(f"{_fmt(metrics.get(c)):>13}" for c in COLUMNS[1:])
            + f"{fit_seconds[method] if method in fit_seconds else float('nan'):>9.1f}"
            + f"{_fmt(ref, 3) if ref is not None else '':>11}"
        )
    per_store = summary["per_store"]
    if per_store:
        wins = sum(e["rmspe"] < e["baseline_rmspe"] for e in per_store if e["baseline_rmspe"] is not None)
        lines.append(
            f"model better than {per_store[0]['baseline']} (best baseline) on {wins} of {len(per_store)} stores"
        )
    if "gbm" in summary["baselines"]:
        for label, values in (("", {m: v.get("rmspe") for m, v in rows.items()}), (" w/o anomalies", without)):
            model, peer = values.get(METHOD_KEY["hierarchical"]), values.get("gbm")
            if model and peer:
                lines.append(f"model vs gbm{label}: {100 * (1 - model / peer):+.1f}% (RMSPE {model:.4f} vs {peer:.4f})")
    cells = anomalies.get("cells", [])
    lines.append(f"anomalous actuals ({anomalies.get('rule', '-')}): {len(cells)}")
    for cell in cells:
        shares = ", ".join(f"{m} {v:.0%}" for m, v in cell["share_of_squared_error"].items())
        lines.append(
            f"  store {cell['store']} on {cell['date']}: sales {cell['y']:,.0f} (store median "
            f"{cell['store_median']:,.0f}, lowest bound {cell['lowest_bound']:,.0f}); share of squared error: {shares}"
        )
    return "\n".join(lines)


def sources_table(evaluation) -> str:
    keys = (
        "rmspe",
        "without_store_level",
        "without_day_shocks",
        "without_both",
        "sd_store_level",
        "sd_day_shocks",
        "sd_rest",
    )
    lines = [
        "error sources (RMSPE if known in advance; sd of the log-error parts):",
        f"{'method':<18}" + "".join(f"{k:>21}" for k in keys),
    ]
    for method, parts in evaluation.anatomy.items():
        lines.append(f"{method:<18}" + "".join(f"{parts[k]:>21.4f}" for k in keys))
    return "\n".join(lines)


def total_line(summary: dict, shock_sd: float) -> str:
    """How the interval of the chain's daily total (all stores summed) held over the horizon."""
    total = summary["total"]
    return (
        f"chain total, {total['n_days']} days: 50% / 90% intervals hold {total['coverage_50']:.2f} / "
        f"{total['coverage_90']:.2f}, RMSPE {total['rmspe']:.4f}; day-shock sd of the fit {shock_sd:.4f}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--steps", type=int, help="SVI steps (default: FitConfig's)")
    parser.add_argument("--samples", type=int, default=500, help="posterior predictive samples")
    parser.add_argument(
        "--cutoffs",
        nargs="*",
        default=list(CUTOFFS),
        help=f"backtest cutoffs (add {ANOMALY_CUTOFF}: the anomaly check)",
    )
    parser.add_argument("--no-coldstart", action="store_true")
    parser.add_argument("--json-out", help="also write every summary to this JSON file")
    parser.add_argument(
        "--features", default="{}", help="FeatureSpec fields changed from the defaults, as JSON (an ablation row)"
    )
    parser.add_argument("--likelihood", help="the model's observation law (FitConfig.likelihood; default: its default)")
    args = parser.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        print(f"no data at {args.data_dir} (needs Kaggle-layout train.csv and store.csv)", file=sys.stderr)
        return 2

    sys.path.insert(0, str(REPO))
    from bhm_core.data.features import FeatureSpec
    from bhm_core.data.sources import KaggleDirSource, load_dataset
    from bhm_core.evaluation.backtest import backtest
    from bhm_core.evaluation.coldstart import coldstart_trial
    from bhm_core.inference.programs import enable_compilation_cache
    from bhm_core.model.config import FitConfig

    enable_compilation_cache()
    config = FitConfig(
        **({"steps": args.steps} if args.steps else {}), **({"likelihood": args.likelihood} if args.likelihood else {})
    )
    start = time.perf_counter()
    spec = FeatureSpec(**json.loads(args.features))
    cube = load_dataset(KaggleDirSource(args.data_dir)).cube(spec)
    print(
        f"loaded {cube.n_stores} stores x {cube.n_days} days in {time.perf_counter() - start:.1f} s; "
        f"FitConfig(steps={config.steps}, learning_rate={config.learning_rate}, likelihood={config.likelihood}), "
        f"{args.samples} samples; {spec}",
        flush=True,
    )
    results = {}
    for cutoff in args.cutoffs:
        start = time.perf_counter()
        evaluation = backtest(cube, cutoff, HORIZON, config=config, n_samples=args.samples)
        summary = evaluation.summary
        results[f"backtest {cutoff}"] = summary
        print(
            table(
                f"backtest cutoff {cutoff}, horizon {HORIZON}",
                summary,
                time.perf_counter() - start,
                REFERENCE.get(cutoff, {}),
            ),
            flush=True,
        )
        print(sources_table(evaluation), flush=True)
        print(total_line(summary, evaluation.fit.day_shock_sd), flush=True)
    if not args.no_coldstart:
        start = time.perf_counter()
        summary = coldstart_trial(
            cube,
            COLD["new_stores"],
            COLD["known_days"],
            HORIZON,
            seed=COLD["seed"],
            config=config,
            n_samples=args.samples,
        ).summary
        results["coldstart"] = summary
        print(
            table(
                f"cold start {COLD['new_stores']} stores x {COLD['known_days']} known days, horizon {HORIZON}",
                summary,
                time.perf_counter() - start,
                REFERENCE["coldstart"],
            ),
            flush=True,
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
