"""A fit's record: how it is built and sealed by its own checksum, parsed, and checked.

The record holds everything about a fit but its arrays (settings, priors, features, lineage, the
arrays' digest) and a SHA-256 over all of that: any change that is not resealed is detected.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import numpy as np

from bhm_core.artifacts import layout
from bhm_core.data.features import FeatureSpec
from bhm_core.errors import ArtifactError, ConfigError
from bhm_core.inference.state import FitResult


def running_versions() -> dict:
    # Looked up on the package each time: the one definition, which an upgrade (or a test
    # standing in for one) replaces there.
    from bhm_core import artifacts

    return artifacts.library_versions()


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def build_record(
    result: FitResult, key: str, arrays: dict, *, label: str, spec: FeatureSpec, parent, lineage: dict | None = None
) -> dict:
    """The record of a fit, sealed: its arrays' digest, then its own over every field."""
    record = {
        "key": key,
        "label": label,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data_fingerprint": result.data_fingerprint,
        "config": result.config.to_dict(),
        "priors": result.priors.to_dict(),
        "spec": asdict(spec),
        "feature_names": list(result.feature_names),
        "feature_groups": list(result.feature_groups),
        "trained": list(result.trained),
        "n_stores": len(result.store_ids),
        "store_ids": [int(i) for i in result.store_ids],
        "versions": running_versions(),
        "parent": parent,
        "lineage": lineage or {},
        "meta": {k: _jsonable(v) for k, v in result.meta.items()},
        "arrays_sha256": layout.arrays_digest(arrays),
    }
    return seal(record)


def seal(record: dict) -> dict:
    """The record with its own checksum over every other field, as a reader will parse it."""
    record = json.loads(json.dumps(record))  # the digest is of what a reader will parse
    record[layout.RECORD_HASH] = layout.record_digest(record)
    return record


MAX_LABEL = 300


def check_label(label) -> str:
    """A label on one line (runs of whitespace, newlines included, become one space), 1 to
    MAX_LABEL characters."""
    text = " ".join(str(label).split()) if isinstance(label, str) else ""
    if not 1 <= len(text) <= MAX_LABEL:
        raise ConfigError(
            f"a fit's label must be 1 to {MAX_LABEL} characters of text, got {len(text)}",
            key="fit.label",
            value=label,
            allowed=f"1 to {MAX_LABEL} characters",
        )
    return text


def parse_record(key: str, raw: bytes) -> dict:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"saved fit {key} has an unreadable record ({exc}); delete it and refit") from None
    if not isinstance(record, dict):
        raise ArtifactError(f"saved fit {key} has an unreadable record (not a JSON object); delete it and refit")
    return record


def check_record(key: str, record: dict) -> None:
    """Stale (other library versions or format) or edited: ArtifactError saying which."""
    if record.get("versions") != running_versions():
        raise ArtifactError(
            f"saved fit {key} was made with {record.get('versions')}, not the "
            f"running {running_versions()}; it will be refitted"
        )
    if record.get(layout.RECORD_HASH) != layout.record_digest(record):
        raise ArtifactError(
            f"saved fit {key}: record edited (its checksum does not match its fields); it will be refitted"
        )
