import gc

from bhm_core.cli import main

status = main()
# Finalising the interpreter after a command that used JAX spends ~0.4 s collecting objects that
# die with the process anyway; frozen, they are left to it. Exit handlers, thread joins and file
# flushes still run as usual.
gc.freeze()
raise SystemExit(status)
