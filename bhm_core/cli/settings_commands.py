"""`config` and `priors`: settings as files, and a fit's posterior as the next fit's priors."""

from __future__ import annotations

from pathlib import Path

from bhm_core.cli.options import json_option, positive_number
from bhm_core.model import settings as settings_file


def add_parsers(sub) -> None:
    config = sub.add_parser("config", help="print the default settings as TOML, or check a settings file")
    which = config.add_mutually_exclusive_group(required=True)
    which.add_argument("--defaults", action="store_true", help="print every setting at its default, as TOML")
    which.add_argument("--check", metavar="FILE", help="check a settings file; print it with every default filled in")
    config.set_defaults(run=cmd_config, show=print, json=False)
    priors = sub.add_parser("priors", help="write a settings file whose priors are a fit's posterior")
    priors.add_argument(
        "--from-fit", required=True, metavar="FIT", help="a saved fit's key (under --fits-dir) or folder"
    )
    priors.add_argument("--fits-dir", metavar="DIR", help="folder of saved fits (default: data/fits, BHM_FIT_DIR)")
    priors.add_argument(
        "--widen",
        type=positive_number(100.0),
        default=2.0,
        metavar="X",
        help="widen the posterior's spreads by X so the next fit is not over-confident (2)",
    )
    priors.add_argument("--out", required=True, metavar="FILE", help="the settings file to write (TOML)")
    json_option(priors)
    priors.set_defaults(run=cmd_priors, out_is_file=True)


def cmd_config(args) -> str:
    chosen = settings_file.load(args.check) if args.check else settings_file.Settings()
    return settings_file.to_toml(chosen).rstrip()


def cmd_priors(args) -> dict:
    from bhm_core.artifacts import default_fit_root
    from bhm_core.data.features import FeatureSpec
    from bhm_core.inference.coldstart import priors_from_posterior
    from bhm_core.reopen import locate

    out = Path(args.out).expanduser()
    store, key = locate(args.from_fit, args.fits_dir or default_fit_root())
    result, record = store.load(key), store.record(key)
    chosen = settings_file.Settings(
        result.config, priors_from_posterior(result, args.widen), FeatureSpec(**record["spec"])
    )
    settings_file.save(chosen, out)
    return {"fit": key, "widen": args.widen, "out": str(out)}
