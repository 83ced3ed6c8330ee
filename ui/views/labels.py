"""The widget labels of the settings, and messages that name a widget instead of a field.

A ConfigError names the value it refused by its key in the settings ("fit.learning_rate",
"priors.promo.mu_scale", "features.trend"); the form shows the label the user sees next to it:
"Learning rate: 0 is not allowed (allowed: (0, 10])".
"""

from __future__ import annotations

import math

from bhm_core.data.features import GROUPS, group_title
from bhm_core.errors import ConfigError

SVI = {
    "steps": "Steps",
    "learning_rate": "Learning rate",
    "optimizer": "Optimizer",
    "schedule": "Learning-rate schedule",
    "final_lr_fraction": "Final LR fraction",
    "clip_norm": "Clip norm",
    "particles": "Particles",
    "seed": "Seed",
    "init": "Start from",
    "batch_size": "Stores per step",
    "warmup_steps": "Warm-up steps",
    "chunk_steps": "Steps between progress reports",
    "likelihood": "Likelihood",
}
EFFECT = {
    "mu_loc": "Centre of the group mean",
    "mu_scale": "Uncertainty of the group mean",
    "sigma_scale": "Store-to-store spread",
}
DISPERSION = {
    "r_mu_loc": "Centre of r_μ",
    "r_mu_scale": "Uncertainty of r_μ",
    "r_sigma_scale": "Store spread of r",
    "w_scale": "Offset scale w",
}
NOISE_TITLE = "Noise (dispersion)"


def label_of(key: str | None) -> str | None:
    """The widget label of a settings key, or None for a key no widget shows."""
    section, _, rest = (key or "").partition(".")
    if section == "fit":
        return SVI.get(rest)
    if section == "priors":
        group, _, name = rest.partition(".")
        if not name:
            return f"{NOISE_TITLE}: {DISPERSION[group]}" if group in DISPERSION else None
        return f"{group_title(group)}: {EFFECT[name]}" if group in GROUPS and name in EFFECT else None
    if section == "features":
        match = [g for g in GROUPS.values() if g.setting_name == rest]
        return f"Feature group {match[0].title}" if match else None
    return None


def _value(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def message(exc: ConfigError) -> str:
    """The error as the form says it: the widget's label, the value and what is allowed."""
    label = label_of(getattr(exc, "key", None))
    if label is None:
        return str(exc)
    allowed = getattr(exc, "allowed", None)
    text = f"{label}: {_value(exc.value)} is not allowed"
    return f"{text} (allowed: {allowed})" if allowed else text
