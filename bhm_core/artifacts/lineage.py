"""What every fit was made from: its data, its code, its libraries, its parent.

A fit's record holds, besides its settings and timings, where its data came from (the source, each
input file's SHA-256 and rows), the code that fitted it (the package version and the git commit of
the checkout, or a hash of the package's files outside one, with a flag when the checkout had
uncommitted changes), every library version that can change a number, and the fit it started from
(a warm start, a posterior-as-prior, a retrain's champion) with the gate's scores when a retrain
promoted it. The record's own checksum covers all of it: an edited lineage is detected like an
edited array.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from functools import cache
from pathlib import Path

from bhm_core import __version__
from bhm_core.data.sources import CsvSource, KaggleDirSource, source_files
from bhm_core.paths import PROJECT_ROOT

LIBRARIES = ("jax", "jaxlib", "numpyro", "numpy", "pandas", "pyarrow", "optax", "streamlit")


@cache
def code_version() -> dict:
    """The package version, and the git commit of the checkout (dirty: uncommitted changes) or,
    outside a checkout, a SHA-256 of the package's source files."""
    out = {"package": __version__}
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--", "bhm_core"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        return {**out, "commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        digest = hashlib.sha256()
        for path in sorted((PROJECT_ROOT / "bhm_core").rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
        return {**out, "files_sha256": digest.hexdigest()}


@cache
def library_versions() -> dict:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(source, rows: dict | None = None) -> list[dict]:
    """Each file the source reads: its path, SHA-256 and rows (`rows`: file name -> rows read)."""
    rows = rows or {}
    out = []
    for path in map(Path, source_files(source)):
        if not path.is_file():
            continue
        out.append({"path": str(path), "sha256": file_sha256(path), "rows": rows.get(path.name)})
    return out


def describe_source(source) -> dict:
    """What a record keeps of its data source, enough to load the same data again."""
    from bhm_core.data.sources import DemoSource

    if isinstance(source, DemoSource):
        return {"kind": "demo", "n_stores": source.n_stores, "n_days": source.n_days, "seed": source.seed}
    if isinstance(source, KaggleDirSource):
        return {"kind": "kaggle-dir", "path": str(Path(source.path).expanduser().absolute())}
    if isinstance(source, CsvSource):
        return {"kind": "csv", "path": str(Path(source.path).absolute()), "columns": [list(p) for p in source.columns]}
    return {}


def lineage(source=None, *, rows: dict | None = None, relation: str | None = None, gate: dict | None = None) -> dict:
    """The lineage a fit's record holds (see the module docstring); the parent's key is the record's
    own `parent` field, `relation` says how the fit came from it (warm start, priors, retrain)."""
    return {
        "source": describe_source(source) if source is not None else {},
        "inputs": input_files(source, rows) if source is not None else [],
        "code": code_version(),
        "libraries": library_versions(),
        "relation": relation,
        "gate": gate,
    }
