"""Retraining on new days with a champion/challenger gate.

The champion is a saved fit as it is. The challenger continues it (inference.fit's warm start: the
start's approximation of the new days' posterior, the optimizer's state carried on) on the data up
to the holdout, the last `holdout` days after the champion's own data, which neither learned from.
Both forecast the holdout and are scored on the stores both cover. The challenger passes when its
RMSPE is at most `tolerance` (relative) above the champion's and each of its 50 % and 90 %
intervals covers within `coverage_points` of its level; it is then continued once more on every
day, saved with the gate's scores in its lineage and made current by replacing the fits folder's
`current` pointer in one rename. Nothing before that rename touches what is current, so a crash or
a kill anywhere leaves the champion current and whole.

Stores: the champion's (those the data still have) and the stores that opened after the
champion's data ended, which start from what the chain's other stores say (the hierarchy's
shrinkage of their few days).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from bhm_core.artifacts import FitStore, fit_key
from bhm_core.artifacts.lineage import lineage
from bhm_core.data.cube import SalesCube
from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import load_dataset
from bhm_core.errors import ConfigError, DataError
from bhm_core.evaluation.drift import drift
from bhm_core.evaluation.metrics import score_dict
from bhm_core.forecast.predict import METHOD, forecast
from bhm_core.inference.fit import fit
from bhm_core.inference.state import FitResult

MIN_HOLDOUT = 7
MAX_HOLDOUT = 365
# A warm start scores within 0.2 % of a cold fit's holdout RMSPE with 30 % of its steps (bench/bench_retrain.py)
WARM_STEP_SHARE = 0.3
SCORES = ("rmspe", "coverage_50", "coverage_90", "crps")


@dataclass(frozen=True)
class Gate:
    holdout: int = 42  # days scored, at the end of the data
    tolerance: float = 0.02  # the challenger's RMSPE may be this much (relative) above the champion's
    coverage_points: float = 5.0  # each interval's coverage within this many points of its level

    def __post_init__(self):
        holdout, tolerance = self.holdout, self.tolerance
        if isinstance(holdout, bool) or not isinstance(holdout, (int, np.integer)):
            raise ConfigError(f"--holdout must be a whole number of days, got {holdout!r}")
        if not MIN_HOLDOUT <= holdout <= MAX_HOLDOUT:
            raise ConfigError(f"--holdout must be from {MIN_HOLDOUT} to {MAX_HOLDOUT} days, got {holdout}")
        if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and 0 <= tolerance <= 1):
            raise ConfigError(f"--tolerance must be from 0 to 1 (a share of the champion's RMSPE), got {tolerance!r}")

    def verdict(self, champion: dict, challenger: dict) -> tuple[bool, str]:
        """(passed, the reason in words) from both sides' scores."""
        limit = champion["rmspe"] * (1 + self.tolerance)
        for level in (50, 90):
            covered = challenger[f"coverage_{level}"] * 100
            if abs(covered - level) > self.coverage_points:
                return False, (
                    f"the challenger's {level} % intervals covered {covered:.1f} % of the holdout, more than "
                    f"{self.coverage_points:g} points from {level} %"
                )
        if challenger["rmspe"] > limit:
            return False, (
                f"the challenger's RMSPE {challenger['rmspe']:.4f} is above the champion's {champion['rmspe']:.4f} "
                f"by more than {self.tolerance:.0%} (limit {limit:.4f})"
            )
        return True, (
            f"the challenger's RMSPE {challenger['rmspe']:.4f} is within {self.tolerance:.0%} of the champion's "
            f"{champion['rmspe']:.4f} (or better), and its intervals are calibrated"
        )


@dataclass(frozen=True)
class Plan:
    """The days and stores of one retraining, from the champion and the new data."""

    cube: SalesCube  # the challenger's stores, every day of the data
    champion_end: np.datetime64
    holdout_first: np.datetime64
    scored_stores: np.ndarray  # the stores both sides forecast
    new_stores: np.ndarray

    @property
    def train_end(self) -> np.datetime64:
        return self.holdout_first - np.timedelta64(1, "D")


def plan(champion: FitResult, data: SalesCube, gate: Gate) -> Plan:
    """Which stores and days; DataError when the data have no days after the champion's."""
    champion_end = np.datetime64(champion.meta.get("last_date"), "D")
    last = data.dates[-1]
    if last <= champion_end:
        raise NoNewDays(f"the data end on {last}, and the champion was fitted up to {champion_end}: no new days")
    known = np.intersect1d(champion.store_ids, data.store_ids)
    if known.size == 0:
        raise DataError("none of the champion's stores is in these data")
    if tuple(data.feature_names) != tuple(champion.feature_names):
        raise DataError(
            "these data encode other features than the champion (a new store variant or holiday level?): "
            "a warm start needs the same features; fit again on these data"
        )
    seen = data.observed & (data.dates <= champion_end)[None, :]
    opened = data.store_ids[~seen.any(1) & data.observed.any(1)]
    new_stores = np.setdiff1d(opened, champion.store_ids)
    cube = data.select_stores(np.union1d(known, new_stores))
    holdout_first = max(last - np.timedelta64(gate.holdout - 1, "D"), champion_end + np.timedelta64(1, "D"))
    return Plan(cube, champion_end, holdout_first, known, new_stores)


class NoNewDays(DataError):
    """Nothing to retrain on: the champion is kept."""


def holdout_scores(result: FitResult, cube: SalesCube, plan: Plan, n_samples: int, seed: int) -> dict:
    """RMSPE, 50 % / 90 % coverage (as shares) and CRPS of a fit on the holdout's observed days."""
    fitted_to = np.datetime64(result.meta.get("last_date"), "D")
    stores = plan.scored_stores
    frame = forecast(
        result,
        cube.select_stores(stores).with_origin(fitted_to),  # the covariates as this fit computed them
        stores,
        plan.holdout_first,
        cube.dates[-1],
        n_samples=n_samples,
        seed=seed,
    )
    scored = frame[frame["y"].notna()]
    if scored.empty:
        raise DataError(f"no sales were observed in the holdout from {plan.holdout_first}: nothing to score")
    scores = score_dict(scored)[METHOD]
    return {k: float(scores[k]) for k in SCORES} | {"n_cells": len(scored)}


def warm(champion: FitResult, cube: SalesCube, last_day, steps: int, seed: int) -> FitResult:
    """The champion continued on the cube's days up to `last_day`."""
    train = cube.with_origin(last_day).select_days(None, last_day)
    config = replace(champion.config, steps=steps, seed=seed)
    return fit(train, config, champion.priors, init=champion)


def retrain(
    store: FitStore,
    champion_key: str,
    source,
    *,
    gate: Gate = Gate(),
    steps: int | None = None,
    n_samples: int = 500,
    seed: int = 0,
    compare_cold: bool = False,
    max_bytes: int | None = None,
    on_phase=None,
) -> dict:
    """Run the gate; promote the challenger when it passes. The answer is the `retrain --json`
    contract: decision, reason, fit, parent, champion, challenger, seconds (and the cold fit's
    seconds and scores when `compare_cold`)."""
    began = time.perf_counter()
    say = on_phase or (lambda phase: None)
    champion = store.load(champion_key)
    record = store.record(champion_key)
    spec = FeatureSpec(**record["spec"])
    options = {} if max_bytes is None else {"max_bytes": max_bytes}
    loaded = load_dataset(source, **options)
    data = loaded.cube(spec)
    steps = steps or max(1, round(champion.config.steps * WARM_STEP_SHARE))
    answer = {"parent": champion_key, "fit": champion_key, "notes": list(loaded.notes)}
    try:
        days = plan(champion, data, gate)
    except NoNewDays as exc:
        return answer | {"decision": "kept", "reason": str(exc), "seconds": _since(began)}
    say(f"challenger: continuing the champion on the days up to {days.train_end}")
    challenger = warm(champion, days.cube, days.train_end, steps, seed)
    say("scoring both on the holdout")
    scores = {
        "champion": holdout_scores(champion, data, days, n_samples, seed),
        "challenger": holdout_scores(challenger, days.cube, days, n_samples, seed),
    }
    answer |= scores | _window(days) | _seconds("challenger", challenger)
    if compare_cold:
        answer |= _cold(champion, days, seed, n_samples)
    say("drift of the champion on the recent days")
    answer["drift"] = _drift_summary(champion, data)
    passed, reason = gate.verdict(scores["champion"], scores["challenger"])
    if not passed:
        return answer | {"decision": "kept", "reason": reason, "seconds": _since(began)}
    say("promoting: continuing the challenger on every day")
    final = warm(challenger, days.cube, days.cube.dates[-1], steps, seed)
    # The parent is part of the key: a retrained fit never takes the name of a cold fit of the same data.
    key = fit_key(days.cube.fingerprint, final.config, final.priors, spec, extra={"retrained_from": champion_key})
    gate_record = {"holdout_first": str(days.holdout_first), **scores, "reason": reason}
    store.replace_with(
        final,
        key,
        label=f"retrained to {days.cube.dates[-1]} from {champion_key[:8]}",
        spec=spec,
        parent=champion_key,
        lineage=lineage(source, rows=loaded.file_rows, relation="retrain", gate=gate_record),
    )
    store.set_current(key)  # the one step that changes what is served
    return answer | {"decision": "promoted", "reason": reason, "fit": key, "seconds": _since(began)}


def _window(days: Plan) -> dict:
    return {
        "holdout": {"first": str(days.holdout_first), "last": str(days.cube.dates[-1])},
        "new_stores": [int(s) for s in days.new_stores],
    }


def _cold(champion: FitResult, days: Plan, seed: int, n_samples: int) -> dict:
    """A cold fit of the challenger's days with the champion's settings: the warm start's yardstick."""
    train = days.cube.with_origin(days.train_end).select_days(None, days.train_end)
    cold = fit(train, replace(champion.config, seed=seed), champion.priors)
    return _seconds("cold", cold) | {"cold": holdout_scores(cold, days.cube, days, n_samples, seed)}


def _seconds(name: str, result: FitResult) -> dict:
    """A fit's time, and the part of it spent compiling (none when the program was compiled before)."""
    return {
        f"{name}_fit_seconds": round(float(result.meta["seconds"]), 3),
        f"{name}_compile_seconds": round(float(result.meta.get("compile_seconds", 0.0)), 3),
    }


def _drift_summary(champion: FitResult, data: SalesCube) -> dict:
    try:
        found = drift(champion, data)
    except DataError as exc:
        return {"skipped": str(exc)}
    return {
        "stores_flagged": len(found["stores_flagged"]),
        "effects_flagged": [e["effect"] for e in found["effects_flagged"]],
        "new_stores": found["inputs"]["new_stores"][:20],
    }


def _since(began: float) -> float:
    return round(time.perf_counter() - began, 3)
