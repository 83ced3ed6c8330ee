"""What a session holds and how it changes: state keys, background jobs and their lifecycle, the
current fit, evaluations, and cached loaders shared by the sessions of the process.

Kept free of imports: the Data page of a fresh server must not load the numerical stack through
a package import (see ui.session.warmup).
"""
