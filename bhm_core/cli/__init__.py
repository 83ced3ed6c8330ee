"""Command line: `python -m bhm_core COMMAND ...`.

Every option is checked before any work starts (options.py). Errors a user can fix (BhmError,
bad options included) print one line to stderr and exit 2; never a traceback. With --json the last
line on stdout is one JSON object. A command may exit with another status that says how it ended
(`retrain`: 3 when the champion was kept).
"""

from __future__ import annotations

import json
import sys

from bhm_core.cli.options import UsageError, preflight
from bhm_core.cli.parser import build_parser
from bhm_core.cli.report import print_evaluation, print_human
from bhm_core.errors import BhmError, FitDivergedError

__all__ = ["build_parser", "main", "print_evaluation"]


def diverged_message(exc: FitDivergedError, args) -> str:
    """The library's advice names dashboard settings; here the options that change them."""
    config = getattr(exc.last_good, "config", None)
    lr = config.learning_rate if config is not None else args.lr
    optimizer = config.optimizer if config is not None else (args.optimizer or "adam")
    hints = [f"lower --lr (now {lr:g})"]
    if optimizer != "clipped_adam":
        hints.append("use --optimizer clipped_adam")
    return f"the fit diverged at step {exc.step}: the loss became non-finite; {' or '.join(hints)}"


def main(argv=None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        preflight(args)
        result = args.run(args)
    except FitDivergedError as exc:
        return _error(diverged_message(exc, args))
    except (BhmError, UsageError) as exc:
        return _error(str(exc))
    try:
        if args.json:
            print(json.dumps(result))
        else:
            getattr(args, "show", print_human)(result)
    except BrokenPipeError:  # the reader stopped early (`| head`): nothing left to tell it
        sys.stderr.close()
    return getattr(args, "exit_code", lambda result: 0)(result)


def _error(message: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)  # one line, always
    return 2
