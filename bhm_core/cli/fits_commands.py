"""`fits list | show FIT | diff FIT_A FIT_B | lineage FIT`: what a fits folder holds."""

from __future__ import annotations

import json

from bhm_core.cli.options import UsageError, json_option


def add_parsers(sub) -> None:
    fits = sub.add_parser("fits", help="the saved fits: list, show, diff, lineage")
    which = fits.add_subparsers(dest="fits_command", required=True, metavar="list|show|diff|lineage")
    listing = which.add_parser("list", help="every saved fit, newest first")
    show = which.add_parser("show", help="one fit's record in full")
    show.add_argument("fit", metavar="FIT")
    differ = which.add_parser("diff", help="what differs between two fits: settings, data, scores, effects")
    differ.add_argument("fit_a", metavar="FIT_A")
    differ.add_argument("fit_b", metavar="FIT_B")
    chain = which.add_parser("lineage", help="a fit and its parents, newest first")
    chain.add_argument("fit", metavar="FIT")
    for command, run, show_it in (
        (listing, cmd_list, _show_list),
        (show, cmd_show, _show_record),
        (differ, cmd_diff, _show_diff),
        (chain, cmd_lineage, _show_lineage),
    ):
        command.add_argument("--fits-dir", metavar="DIR", help="folder of saved fits (default: data/fits, BHM_FIT_DIR)")
        json_option(command)
        command.set_defaults(run=run, show=show_it)


def _store(args):
    from bhm_core.artifacts import FitStore, default_fit_root

    return FitStore(args.fits_dir or default_fit_root())


def _locate(args, fit: str):
    from bhm_core.artifacts import default_fit_root
    from bhm_core.reopen import locate

    return locate(fit, args.fits_dir or default_fit_root())


def cmd_list(args) -> dict:
    store = _store(args)
    frame = store.list()
    keep = ["key", "created", "label", "n_stores", "steps", "final_loss", "parent", "stale"]
    rows = json.loads(frame[keep].to_json(orient="records"))
    return {"fits_dir": str(store.root), "fits": rows}


def _show_list(result: dict) -> None:
    if not result["fits"]:
        print(f"no saved fits in {result['fits_dir']}")
        return
    for row in result["fits"]:
        stale = "  (made with other library versions)" if row["stale"] else ""
        size = f"{row['n_stores']:>5} stores  {row['steps']:>6} steps"
        print(f"{row['key']}  {row['created']}  {size}  {row['label']}{stale}")


def cmd_show(args) -> dict:
    store, key = _locate(args, args.fit)
    return store.record(key)


def _show_record(record: dict) -> None:
    print(json.dumps(record, indent=2))


def cmd_diff(args) -> dict:
    from bhm_core.history import diff

    store, a = _locate(args, args.fit_a)
    other, b = _locate(args, args.fit_b)
    if other.root != store.root:
        raise UsageError("FIT_A and FIT_B must be in one fits folder")
    return diff(store, a, b)


def _show_diff(result: dict) -> None:
    print(f"from {result['a']} to {result['b']}")
    for change in result["settings"]:
        print(f"  {change['setting']}: {change['a']} -> {change['b']}")
    if not result["settings"]:
        print("  the same settings")
    data = result["data"]
    if data["same_data"]:
        print("  the same data")
    else:
        print(f"  days {data['days']['a']} -> {data['days']['b']}")
        for name in ("stores_added", "stores_removed", "files_changed"):
            if data[name]:
                print(f"  {name.replace('_', ' ')}: {', '.join(map(str, data[name][:20]))}")
    for row in result["effects_moved"]:
        print(f"  effect {row['effect']}: x{row['a']:.3f} -> x{row['b']:.3f} ({100 * row['change']:+.1f} %)")
    if not result["effects_moved"]:
        print("  no chain-wide effect moved beyond its uncertainty")


def cmd_lineage(args) -> dict:
    from bhm_core.history import lineage_chain

    store, key = _locate(args, args.fit)
    return {"chain": lineage_chain(store, key)}


def _show_lineage(result: dict) -> None:
    for depth, row in enumerate(result["chain"]):
        how = f" ({row['relation']})" if row.get("relation") else ""
        gone = "  [no longer saved]" if row.get("missing") else ""
        print(f"{'  ' * depth}{row['fit']}  {row['created'] or ''}  {row['label'] or ''}{how}{gone}")
