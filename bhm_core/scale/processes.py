"""One scale run as N JAX processes: a launcher on one machine, and the join every process makes.

`python -m bhm_core scale ... --processes N` (no --process-id) launches N children of the same
command on this machine, each with `--process-id I --coordinator 127.0.0.1:PORT`. Every child
calls `jax.distributed.initialize` (process 0 hosts the coordinator) with CPU collectives over
Gloo, so the global device mesh spans every process's devices and the one sharded fit program
(inference.fit) runs on it: each process packs and places only its own share of the cells, and
the results are gathered back to every process. Process 0's output is the run's.

On a cluster, start the same command on every host with its own --process-id and the
coordinator's address; nothing here is then needed but `join`.

The launcher kills every child as soon as one fails, when the run passes its timeout, and when
the launcher itself ends (children die with it). With a loopback coordinator nothing listens
beyond 127.0.0.1: the coordinator binds there, and so does Gloo.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bhm_core.errors import BhmError, ConfigError

DEFAULT_TIMEOUT = 3600.0  # seconds for the whole run
GRACE = 30.0  # seconds the other processes may take to finish after process 0 has
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
NOISE = ("I0000", "W0000", "[Gloo]", "WARNING: All log messages")  # JAX's and Gloo's chatter on stderr


class ProcessesError(BhmError):
    """A child process failed, or the run passed its timeout."""


def check_processes(n: int, n_series: int, process_id: int | None = None) -> None:
    """Before any work: 1 <= n <= series, and a process id below n."""
    if not 1 <= n <= n_series:
        raise ConfigError(f"--processes must be from 1 to the number of series ({n_series:,}), got {n:,}")
    if process_id is not None and not 0 <= process_id < n:
        raise ConfigError(f"--process-id must be from 0 to {n - 1} (--processes {n}), got {process_id}")


def check_coordinator(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--coordinator must be HOST:PORT (e.g. 10.0.0.1:8476), got {address!r}")
    return host, int(port)


def free_port() -> int:
    """A port free on 127.0.0.1 now (the coordinator binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# every process


def join(process_id: int, n_processes: int, coordinator: str, timeout: float) -> None:
    """Join the run before JAX's backends start: jax.distributed with Gloo CPU collectives.

    Ends this process (with every thread's traceback on stderr) if the run is not done 10 s after
    `timeout` seconds (a launcher kills it at `timeout`). A loopback coordinator keeps every
    socket on 127.0.0.1.
    """
    import jax

    host, port = check_coordinator(coordinator)
    local = host in LOOPBACK
    faulthandler.dump_traceback_later(timeout + 10, exit=True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=n_processes,
        process_id=process_id,
        initialization_timeout=max(10, int(min(timeout, 300))),
        # JAX's default binds the coordinator to every interface ([::]:PORT)
        coordinator_bind_address=f"127.0.0.1:{port}" if local else None,
    )
    if local:
        _loopback_gloo()


def _loopback_gloo() -> None:
    """The CPU backend's Gloo collectives on 127.0.0.1: JAX's own factory lets Gloo pick the
    host name's address, which on most machines is not the loopback one."""
    from jax._src import distributed, xla_bridge
    from jax._src.lib import _jax

    collectives = _jax.make_gloo_tcp_collectives(
        distributed_client=distributed.global_state.client, hostname="127.0.0.1"
    )
    xla_bridge.register_backend_factory(
        "cpu", lambda: xla_bridge.make_cpu_client(collectives=collectives), priority=0, fail_quietly=False
    )


# ----------------------------------------------------------------------------------------------
# the launcher


def launch(argv: list[str], n: int, timeout: float = DEFAULT_TIMEOUT, on_line=None) -> dict:
    """Run `python -m bhm_core` + argv as n processes on this machine and return process 0's
    result (the JSON object it prints last). argv must include --json and not --processes.
    on_line(text): each other line process 0 prints (progress), as it comes."""
    coordinator = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
    common = [sys.executable, "-m", "bhm_core", *argv, "--processes", str(n), "--coordinator", coordinator]
    common += ["--timeout", str(timeout)]
    with tempfile.TemporaryDirectory(prefix="bhm-processes-") as folder:
        logs = [Path(folder) / f"process-{i}.log" for i in range(n)]
        children, lines, on_death = [], [], _death_signal()
        try:
            for i in range(n):
                with open(logs[i], "wb") as log:
                    children.append(
                        subprocess.Popen(
                            [*common, "--process-id", str(i)],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL,
                            stderr=log,
                            env=env,
                            preexec_fn=on_death,
                        )
                    )
            reader = threading.Thread(target=_read, args=(children[0].stdout, lines, on_line), daemon=True)
            reader.start()
            _wait(children, logs, time.monotonic() + timeout, timeout)
            reader.join(timeout=5)
        finally:
            for child in children:
                _kill(child)
        return _result(lines, logs[0])


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])  # the folder holding bhm_core: children import this code


def _death_signal():
    """A function for the child to run before exec: the kernel then sends it SIGKILL when the
    launcher dies (Linux's PR_SET_PDEATHSIG); None elsewhere. Loaded here, not in the child."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)


def _read(stream, lines: list, on_line) -> None:
    for raw in stream:
        text = raw.decode(errors="replace").rstrip("\n")
        lines.append(text)
        if on_line is not None and not text.startswith(("{", *NOISE)):  # Gloo prints on stdout too
            on_line(text)


def _wait(children, logs, deadline: float, timeout: float) -> None:
    """Until every child has ended well; raise (the caller kills the rest) at the first failure,
    at the deadline, or when the others hang after process 0 is done."""
    done_at = None
    while True:
        codes = [child.poll() for child in children]
        for i, code in enumerate(codes):
            if code not in (None, 0):
                raise ProcessesError(
                    f"process {i} of {len(children)} exited with status {code}: {_last_words(logs[i])}"
                )
        if all(code == 0 for code in codes):
            return
        now = time.monotonic()
        if codes[0] == 0 and done_at is None:
            done_at = now
        if done_at is not None and now - done_at > GRACE:
            hung = [i for i, code in enumerate(codes) if code is None]
            raise ProcessesError(f"processes {hung} did not finish {GRACE:.0f} s after process 0 did; killed")
        if now > deadline:
            raise ProcessesError(f"the run passed its timeout of {timeout:g} s; every process was killed")
        time.sleep(0.1)


def _kill(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=10)
    if child.stdout is not None:
        child.stdout.close()


def _last_words(log: Path) -> str:
    """The child's error line, else its last line that is not JAX's or Gloo's chatter."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    said = [line.strip() for line in text if line.strip() and not line.startswith(NOISE)]
    errors = [line for line in said if line.startswith("error:")]
    return (errors or said or ["(nothing on stderr)"])[-1][-500:]


def _result(lines: list, log: Path) -> dict:
    for text in reversed(lines):
        if text.startswith("{"):
            return json.loads(text)
    raise ProcessesError(f"process 0 printed no result: {_last_words(log)}")
