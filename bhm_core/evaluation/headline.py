"""What a backtest's headline means: the lift over the best baseline with its spread over stores,
and the cases where pooling stores pays, each scored on its own.

On a handful of stores with years of history each, a store's own days pin its effects and the
hierarchy has little to add: a lift near 0 is the expected result, not a failure. Pooling pays where
a store's own data are thin: stores with little history, the days around holidays (seen a few
times a year), new stores (the cold-start trial), and intervals (a store's own noise estimate from
few days is itself noisy). `pooling_cases` scores each case that the backtest's days contain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.data.cube import SalesCube
from bhm_core.evaluation.metrics import score
from bhm_core.evaluation.tables import best_baseline, lift_percent
from bhm_core.forecast.predict import METHOD

SHORT_HISTORY_DAYS = 365
HOLIDAY_NEIGHBOURS = 3  # days before and after a state holiday that count as around it
PEER = "gbm"  # the strongest peer a practitioner would pick


def _rmspe(frame: pd.DataFrame, methods) -> dict:
    scored = frame[frame["y"].notna() & frame["method"].isin(methods)]
    if scored.empty:
        return {}
    table = score(scored, by=("method",))
    return table.set_index("method")["rmspe"].to_dict() if "method" in table else table["rmspe"].to_dict()


def lift_interval(forecasts: pd.DataFrame, baseline: str, n_boot: int = 300, seed: int = 0) -> tuple:
    """90 % interval of the lift over `baseline` when the stores are drawn again with replacement:
    how much the headline would move on another handful of similar stores."""
    scored = forecasts[forecasts["y"].notna() & forecasts["method"].isin([METHOD, baseline])]
    if scored.empty:
        return None, None
    rel = (scored["y"] - _point(scored)) / scored["y"]
    cells = pd.DataFrame({"store": scored["store"], "method": scored["method"], "sq": rel**2})
    sums = cells.groupby(["store", "method"])["sq"].agg(["sum", "count"]).unstack("method")
    stores = sums.index.to_numpy()
    if len(stores) < 2 or METHOD not in sums["sum"] or baseline not in sums["sum"]:
        return None, None
    rng = np.random.default_rng(seed)
    lifts = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(stores), len(stores))
        part = sums.iloc[pick].sum()
        model = np.sqrt(part[("sum", METHOD)] / part[("count", METHOD)])
        base = np.sqrt(part[("sum", baseline)] / part[("count", baseline)])
        lifts.append(lift_percent(model, base))
    lo, hi = np.percentile(np.asarray(lifts, float), [5, 95])
    return float(lo), float(hi)


def _point(frame: pd.DataFrame) -> pd.Series:
    """The point RMSPE is scored on: the RMSPE-optimal one where a method has it."""
    if "point_rmspe" in frame:
        return frame["point_rmspe"].fillna(frame["point"])
    return frame["point"]


def _case(name: str, why: str, frame: pd.DataFrame, baseline: str) -> dict:
    rmspe = _rmspe(frame, [METHOD, baseline])
    scored = frame[frame["y"].notna() & (frame["method"] == METHOD)]
    model, base = rmspe.get(METHOD), rmspe.get(baseline)
    return {
        "case": name,
        "why": why,
        "stores": int(scored["store"].nunique()),
        "store_days": len(scored),
        "model_rmspe": model,
        "baseline_rmspe": base,
        "lift_pct": lift_percent(model, base),
    }


def pooling_cases(summary: dict, forecasts: pd.DataFrame, cube: SalesCube, cutoff) -> pd.DataFrame:
    """One row per case the backtest's days contain (all scored against the run's best baseline):
    all store-days, stores with under a year of history before the cutoff, holidays and the days
    around them; and the intervals (90 % coverage of the model and of the best baseline with
    intervals, and CRPS)."""
    best, _ = best_baseline(summary)
    if best is None:
        return pd.DataFrame()
    rows = [_case("All scored store-days", "the headline", forecasts, best)]
    cutoff = np.datetime64(str(cutoff), "D")
    history = cube.observed[:, cube.dates <= cutoff].sum(1)
    short = set(cube.store_ids[history < SHORT_HISTORY_DAYS].tolist())
    mine = forecasts[forecasts["store"].isin(short)]
    if not mine.empty:
        why = f"under {SHORT_HISTORY_DAYS} observed days before the cutoff: little of their own to learn from"
        rows.append(_case("Stores with little history", why, mine, best))
    around = _around_holidays(cube, forecasts)
    if around.any():
        why = f"state holidays and {HOLIDAY_NEIGHBOURS} days either side: a few of each a year per store"
        rows.append(_case("Holidays and the days around them", why, forecasts[around], best))
    return pd.DataFrame(rows)


def _around_holidays(cube: SalesCube, forecasts: pd.DataFrame) -> np.ndarray:
    holiday = cube.covariates.state_holiday > 0  # (S, T)
    near = holiday.copy()
    for shift in range(1, HOLIDAY_NEIGHBOURS + 1):
        near[:, shift:] |= holiday[:, :-shift]
        near[:, :-shift] |= holiday[:, shift:]
    col = ((forecasts["date"].to_numpy().astype("datetime64[D]") - cube.dates[0]).astype(np.int64)).clip(
        0, cube.n_days - 1
    )
    rows = cube.store_rows(forecasts["store"].to_numpy(np.int64))
    return near[rows, col]


def intervals_case(summary: dict) -> dict | None:
    """The model's 90 % coverage and CRPS next to the best baseline that has intervals."""
    with_intervals = {name: m for name, m in summary.get("baselines", {}).items() if m.get("coverage_90") is not None}
    if not with_intervals:
        return None
    name = min(with_intervals, key=lambda n: with_intervals[n].get("crps") or np.inf)
    model = summary.get("model", {})
    return {
        "baseline": name,
        "model_coverage_90": model.get("coverage_90"),
        "baseline_coverage_90": with_intervals[name].get("coverage_90"),
        "model_crps": model.get("crps"),
        "baseline_crps": with_intervals[name].get("crps"),
        "crps_lift_pct": lift_percent(model.get("crps"), with_intervals[name].get("crps")),
    }


def peer_case(summary: dict) -> dict | None:
    """The model against the strongest peer (LightGBM), when the run has it."""
    peer = summary.get("baselines", {}).get(PEER)
    if not peer or peer.get("rmspe") is None:
        return None
    model = summary.get("model", {}).get("rmspe")
    return {
        "baseline": PEER,
        "model_rmspe": model,
        "baseline_rmspe": peer["rmspe"],
        "lift_pct": lift_percent(model, peer["rmspe"]),
    }
