"""`retrain` and `drift`: keeping a fit up with new days.

`retrain` exits 0 when the challenger was promoted (the fits folder's `current` now names it), 3
when the champion was kept (the JSON's `reason` says why) and 2 on bad input, so that a nightly job
(cron, a systemd timer) can act on its status alone.
"""

from __future__ import annotations

import argparse
import math
import sys

from bhm_core.cli.options import SEED, STEPS, UsageError, data_options, integer, json_option, sample_options
from bhm_core.retrain import MAX_HOLDOUT, MIN_HOLDOUT

KEPT_EXIT = 3


def _fits_dir(command) -> None:
    command.add_argument("--fits-dir", metavar="DIR", help="folder of saved fits (default: data/fits, BHM_FIT_DIR)")


def add_parsers(sub) -> None:
    retrain = sub.add_parser("retrain", help="continue a fit on new days; promote it if it passes the gate")
    data_options(retrain, demo=False)
    retrain.add_argument("--from", dest="champion", required=True, metavar="FIT", help="the champion: a fit's key")
    _fits_dir(retrain)
    retrain.add_argument(
        "--holdout",
        type=integer(MIN_HOLDOUT, MAX_HOLDOUT),
        default=42,
        metavar="DAYS",
        help="the last days, scored for both and learned by neither (42)",
    )
    retrain.add_argument(
        "--tolerance",
        type=_share,
        default=0.02,
        help="how much worse (relative RMSPE) the challenger may be and still be promoted (0.02)",
    )
    retrain.add_argument(
        "--coverage-points",
        type=integer(0, 50),
        default=5,
        metavar="POINTS",
        help="how far from 50 %% and 90 %% the challenger's interval coverage may be (5)",
    )
    retrain.add_argument("--steps", type=STEPS, help="steps of each warm start (default: 30 % of the champion's)")
    retrain.add_argument("--seed", type=SEED, default=0)
    retrain.add_argument(
        "--compare-cold", action="store_true", help="also fit the challenger's days cold and report its time and scores"
    )
    sample_options(retrain)
    json_option(retrain)
    retrain.set_defaults(run=cmd_retrain, show=_show_retrain, exit_code=_retrain_exit)

    drift = sub.add_parser("drift", help="has the chain changed under a fit? stores, effects and inputs")
    data_options(drift, demo=False)
    drift.add_argument("--fit", required=True, metavar="FIT", help="a saved fit's key (under --fits-dir) or folder")
    _fits_dir(drift)
    drift.add_argument(
        "--recent", type=integer(7, 5_000), default=56, metavar="DAYS", help="the recent days checked (56)"
    )
    drift.add_argument("--seed", type=SEED, default=0)
    json_option(drift)
    drift.set_defaults(run=cmd_drift, show=_show_drift)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1 (a share of the champion's RMSPE), got {text}")
    return value


def _source(args, record: dict | None = None):
    from bhm_core.data.sources import KaggleDirSource
    from bhm_core.errors import DataError
    from bhm_core.reopen import source_from_record

    if args.data_dir:
        return KaggleDirSource(args.data_dir)
    source = source_from_record(((record or {}).get("lineage") or {}).get("source"))
    if source is None:
        raise DataError("the fit does not say which data it was made on; give them with --data-dir")
    return source


def cmd_retrain(args) -> dict:
    from bhm_core.artifacts import default_fit_root
    from bhm_core.reopen import locate
    from bhm_core.retrain import Gate, retrain

    if not args.data_dir:
        raise UsageError("retrain needs --data-dir: the folder with the data and their new days")
    gate = Gate(holdout=args.holdout, tolerance=args.tolerance, coverage_points=args.coverage_points)
    store, key = locate(args.champion, args.fits_dir or default_fit_root())
    return retrain(
        store,
        key,
        _source(args),
        gate=gate,
        steps=args.steps,
        n_samples=args.samples,
        seed=args.seed,
        compare_cold=args.compare_cold,
        max_bytes=args.max_bytes,
        on_phase=lambda phase: print(phase, file=sys.stderr, flush=True),
    )


def _retrain_exit(result: dict) -> int:
    return 0 if result["decision"] == "promoted" else KEPT_EXIT


def _show_retrain(result: dict) -> None:
    for note in result.get("notes", ()):
        print(f"warning: {note}", file=sys.stderr)
    print(f"{result['decision']}: {result['reason']}")
    for side in ("champion", "challenger", "cold"):
        if side in result:
            s = result[side]
            print(
                f"  {side:<10} RMSPE {s['rmspe']:.4f}  50 % covered {100 * s['coverage_50']:.1f} %  "
                f"90 % covered {100 * s['coverage_90']:.1f} %  CRPS {s['crps']:.1f}"
            )
    print(f"current fit: {result['fit']}" if result["decision"] == "promoted" else f"kept: {result['fit']}")


def cmd_drift(args) -> dict:
    from bhm_core.artifacts import default_fit_root
    from bhm_core.cli.commands import dataset
    from bhm_core.data.features import FeatureSpec
    from bhm_core.evaluation.drift import drift
    from bhm_core.reopen import locate

    store, key = locate(args.fit, args.fits_dir or default_fit_root())
    result, record = store.load(key), store.record(key)
    cube = dataset(_source(args, record), args).cube(FeatureSpec(**record["spec"]))
    return {"fit": key, **drift(result, cube, args.recent, seed=args.seed)}


def _show_drift(result: dict) -> None:
    print(f"fit {result['fit']}: the {result['recent_days']} days {result['first_day']} .. {result['last_day']}")
    stores = result["stores_flagged"]
    print(f"stores that left the model: {len(stores)}")
    for row in stores[:20]:
        print(
            f"  store {row['store']}: {100 * row['share_outside_90']:.0f} % of days outside the 90 % interval, "
            f"sales {100 * math.expm1(row['mean_log_error']):+.0f} % against the forecast"
        )
    effects = result["effects_flagged"]
    print(f"effects that moved: {len(effects)}")
    for row in effects:
        print(f"  {row['effect']}: shift {row['shift']:+.3f} on the log scale (probability {row['probability']:.2f})")
    inputs = result["inputs"]
    for name in ("new_stores", "vanished_stores", "new_variants", "new_holiday_levels"):
        if inputs.get(name):
            print(f"{name.replace('_', ' ')}: {', '.join(map(str, inputs[name][:20]))}")
