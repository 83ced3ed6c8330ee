"""One trace of the model with NumPyro's effect handlers at a time, per process.

NumPyro keeps its stack of handlers in one module-level list that every thread shares, so two
threads tracing the model at once (two sessions' first fits on one server, a fit compiling while
a prior check compiles) push onto each other's stack and each sees the other's sites ("all sites
must have unique names"). Whatever traces the model (the guide's one trace of its sites, lowering
a chunk runner, the first call of the jitted prior draws) holds TRACE_LOCK; compiling a lowered
program and running a compiled one do not, so fits still run side by side.
"""

from __future__ import annotations

import threading

TRACE_LOCK = threading.RLock()
