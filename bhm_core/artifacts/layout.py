"""A fit's arrays by name, what they must look like, and the checksums that seal a saved fit.

The names and shapes a fit must hold are not kept by hand: they come from the model (the guide's
entries at this fit's number of stores and features, `guide.entry_shapes`) and from the optimizer
(the tree `optim.init_state` builds for the trained sites), so a saved file that does not fit the
model that reads it is refused by name, before anything is built from it.
"""

from __future__ import annotations

import hashlib
import json

import jax
import numpy as np

from bhm_core.errors import ArtifactError
from bhm_core.inference.optim import init_state
from bhm_core.inference.state import FitResult
from bhm_core.model import guide
from bhm_core.model.guide import SiteParams, Whitening

RECORD_HASH = "record_sha256"  # the record field that holds the record's own checksum
# Every guide entry is float32: the start builds them so and the optimizer keeps their dtype.
PARAM_DTYPE = np.dtype(np.float32)
FIXED_ARRAYS = {"losses": np.dtype(np.float64), "store_ids": np.dtype(np.int64), "step": np.dtype(np.int32)}


def flatten(result: FitResult) -> dict:
    """Every array of a fit under a readable name: the guide entries by site and field, the
    optimizer state by its path in the optimizer's own tree (whatever the optimizer)."""
    arrays = {
        "losses": np.asarray(result.losses, np.float64),
        "store_ids": np.asarray(result.store_ids, np.int64),
        "step": np.asarray(result.state.step, np.int32),
    }
    for name, entry in result.params.items():
        for part, array in entry._asdict().items():
            arrays[f"params/{name}/{part}"] = np.asarray(array)
    for path, leaf in jax.tree_util.tree_flatten_with_path(result.state.opt_state)[0]:
        arrays[f"opt/{jax.tree_util.keystr(path)}"] = np.asarray(leaf)
    return arrays


def unflatten_params(arrays: dict) -> dict:
    """Entries by their fields: (loc, log_scale) for a guide site, (center, chol) for a whitening."""
    names = sorted({k.split("/")[1] for k in arrays if k.startswith("params/")})
    out = {}
    for n in names:
        kind = Whitening if f"params/{n}/chol" in arrays else SiteParams
        out[n] = kind(*(arrays[f"params/{n}/{part}"] for part in kind._fields))
    return out


def optimizer_state(arrays: dict, optimizer: str, params: dict, trained: tuple):
    """The optimizer state saved with a fit, in the tree the optimizer builds for these sites."""
    # Only the tree's structure is needed: tracing the init builds no arrays (eager zeros cost 0.2 s at Rossmann size).
    template = jax.eval_shape(lambda p: init_state(optimizer, p), {name: params[name] for name in trained})
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = [arrays[f"opt/{jax.tree_util.keystr(path)}"] for path, _ in paths]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def expected_arrays(n_stores: int, n_features: int, optimizer: str, trained: tuple) -> tuple[dict, set]:
    """({name: (shape, dtype)} a fit of this size must hold, names it may leave out)."""
    shapes = guide.entry_shapes(n_stores, n_features)
    unknown = sorted(set(trained) - {s.name for s in guide.guide_sites()})
    if unknown:
        raise ArtifactError(f"record names trained sites {unknown} the model does not have")
    out = {
        name: ((-1,) if name == "losses" else (n_stores,) if name == "store_ids" else (), dtype)
        for name, dtype in FIXED_ARRAYS.items()
    }
    optional = set()
    for name, entry in shapes.items():
        for part, shape in entry._asdict().items():
            out[f"params/{name}/{part}"] = (shape, PARAM_DTYPE)
            if isinstance(entry, Whitening):  # only a least-squares start builds a basis
                optional.add(f"params/{name}/{part}")
    abstract = {name: SiteParams(*(jax.ShapeDtypeStruct(s, PARAM_DTYPE) for s in shapes[name])) for name in trained}
    template = jax.eval_shape(lambda p: init_state(optimizer, p), abstract)
    for path, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        out[f"opt/{jax.tree_util.keystr(path)}"] = (tuple(leaf.shape), np.dtype(leaf.dtype))
    return out, optional


def check_arrays(arrays: dict, expected: dict, optional: set) -> None:
    """ArtifactError naming the first array that is missing, unexpected, or of another shape or
    dtype than the model builds (a shape of -1 accepts any length)."""
    missing = sorted(set(expected) - set(arrays) - optional)
    if missing:
        raise ArtifactError(f"array {missing[0]} is missing")
    present_optional = {name for name in optional if name in arrays}
    if present_optional and present_optional != optional:
        raise ArtifactError(f"arrays {sorted(optional - present_optional)} are missing")
    unexpected = sorted(set(arrays) - set(expected))
    if unexpected:
        raise ArtifactError(f"array {unexpected[0]} is not part of a fit")
    for name, array in sorted(arrays.items()):
        shape, dtype = expected[name]
        fits = len(shape) == array.ndim and all(e in (-1, a) for e, a in zip(shape, array.shape))
        if not fits:
            wanted = "(any length,)" if shape == (-1,) else str(shape)
            raise ArtifactError(f"array {name} has shape {array.shape}, expected {wanted}")
        if array.dtype != dtype:
            raise ArtifactError(f"array {name} has dtype {array.dtype}, expected {dtype}")


def arrays_digest(arrays: dict) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order: what is loaded,
    whatever the container (npz compression or zip metadata) looks like."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode() + b"\n")
        h.update(array.reshape(-1).view(np.uint8))  # the bytes in place: no copy of a 100 MB array
    return h.hexdigest()


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_digest(record: dict) -> str:
    """SHA-256 of the canonical JSON of every record field but the record's own checksum (the
    record holds the arrays' digest, so this seals the arrays too)."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != RECORD_HASH})).hexdigest()
