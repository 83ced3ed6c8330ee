"""Human-readable output of the command line (with --json, one JSON object instead)."""

from __future__ import annotations


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def print_evaluation(result: dict) -> None:
    """Human-readable backtest / cold-start report: a header and one table row per method."""
    if result.get("known_days") is not None:
        print(
            f"cold start: {result['n_stores']} new stores, {result['known_days']} known days each, "
            f"horizon {result['horizon']} days ({result.get('n_fit_stores')} stores in the "
            f"hierarchy)"
        )
    else:
        print(f"backtest: cutoff {result['cutoff']}, horizon {result['horizon']} days, {result['n_stores']} stores")
    print(
        f"scored cells {result['n_scored_cells']:,}; fit {result['fit_seconds']:.1f} s "
        f"(compile {result['compile_seconds']:.1f} s), {result['steps']} steps, final loss "
        f"{_fmt(result['final_loss'])}"
    )
    from bhm_core.evaluation.tables import METRIC_KEYS

    rows = {"hierarchical": result["model"], **result["baselines"]}
    width = max(len(name) for name in rows)
    print(f"{'method':<{width}}  " + "  ".join(f"{k:>11}" for k in METRIC_KEYS))
    for name, metrics in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{_fmt(metrics.get(k)):>11}" for k in METRIC_KEYS))
    entries = result["per_store"]
    if entries and entries[0].get("baseline"):
        wins = sum(1 for e in entries if e["baseline_rmspe"] is not None and e["rmspe"] < e["baseline_rmspe"])
        print(f"per store: the model beats {entries[0]['baseline']} (best baseline) on {wins} of {len(entries)} stores")
    if result.get("new_stores") is not None:
        print("new stores: " + " ".join(map(str, result["new_stores"])))


def print_human(result: dict) -> None:
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
