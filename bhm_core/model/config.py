"""Priors and fit settings: frozen, validated, hashable (they are part of a fit's cache key)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace

import numpy as np

from bhm_core.data.features import FEATURE_GROUPS, GROUPS
from bhm_core.errors import ConfigError

OPTIMIZERS = ("adam", "clipped_adam")
SCHEDULES = ("constant", "cosine", "exponential")
INITS = ("least_squares", "prior")


# The settings' names in files and forms (see ConfigError.key): FitConfig -> fit, Priors -> priors.
SECTIONS = {"FitConfig": "fit", "Priors": "priors"}


def _settings_key(owner: str, name: str) -> str:
    section, _, rest = owner.partition(".")
    return ".".join(p for p in (SECTIONS.get(section, section), rest, name) if p)


def _check_number(owner: str, name: str, value, *, low=None, high=None, low_open=False, integer=False) -> None:
    left = "(" if low_open else "["
    allowed = f"{left}{low}, {high if high is not None else 'inf'}]"
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(
            f"{owner}.{name} must be {kind}, got {value!r}",
            key=_settings_key(owner, name),
            value=value,
            allowed=f"{kind} in {allowed}",
        )
    below = value <= low if low_open else value < low if low is not None else False
    if below or (high is not None and value > high):
        raise ConfigError(
            f"{owner}.{name} must be in {allowed}, got {value!r}",
            key=_settings_key(owner, name),
            value=value,
            allowed=allowed,
        )


def _reject_unknown_fields(cls, data: dict) -> None:
    known = [f.name for f in fields(cls)]
    unknown = set(data) - set(known)
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"unknown {cls.__name__} field(s) {sorted(unknown)}",
            key=_settings_key(cls.__name__, name),
            value=data[name],
            allowed=f"one of {', '.join(known)}",
        )


@dataclass(frozen=True)
class EffectPrior:
    """Hyperpriors of one feature group: theta_mu ~ Normal(mu_loc, mu_scale), theta_sigma ~ HalfNormal(sigma_scale)."""

    mu_loc: float = 0.0
    mu_scale: float = 1.0
    sigma_scale: float = 2.0

    def check(self, group: str) -> None:
        _check_number(f"Priors.{group}", "mu_loc", self.mu_loc, low=-50, high=50)
        _check_number(f"Priors.{group}", "mu_scale", self.mu_scale, low=0, high=100, low_open=True)
        _check_number(f"Priors.{group}", "sigma_scale", self.sigma_scale, low=0, high=100, low_open=True)


DISPERSION_PRIORS = (  # (field, default, low, high, low open): the dispersion's hyperpriors
    # log-dispersion: Var[y] = E[y] (1 + exp(r)) (Gamma-Poisson; log_student_t: Var[log(1 + y)] ~ exp(-r))
    ("r_mu_loc", 4.0, -20, 20, False),
    ("r_mu_scale", 1.0, 0, 100, True),
    ("r_sigma_scale", 1.0, 0, 100, True),
    ("w_scale", 0.1, 0, 100, True),  # scale of the per-store dispersion offsets
)


def _check_priors(self) -> None:
    for group in FEATURE_GROUPS:
        prior = getattr(self, group)
        if not isinstance(prior, EffectPrior):
            raise ConfigError(f"Priors.{group} must be an EffectPrior, got {prior!r}")
        prior.check(group)
    for name, _, low, high, low_open in DISPERSION_PRIORS:
        _check_number("Priors", name, getattr(self, name), low=low, high=high, low_open=low_open)


def _priors_to_dict(self) -> dict:
    return asdict(self)


def _priors_from_dict(cls, data: dict):
    _reject_unknown_fields(cls, data)
    values = {k: EffectPrior(**v) if k in FEATURE_GROUPS else v for k, v in data.items()}
    return cls(**values)


def _with_group(self, group: str, **changes):
    return replace(self, **{group: replace(getattr(self, group), **changes)})


def _effect_default(group: str):
    return lambda: EffectPrior(*GROUPS[group].prior)


# One EffectPrior per feature group of the registry (its default there), then the dispersion's.
Priors = make_dataclass(
    "Priors",
    [(g, EffectPrior, field(default_factory=_effect_default(g))) for g in FEATURE_GROUPS]
    + [(name, float, field(default=default)) for name, default, *_ in DISPERSION_PRIORS],
    frozen=True,
    namespace={
        "__post_init__": _check_priors,
        "to_dict": _priors_to_dict,
        "from_dict": classmethod(_priors_from_dict),
        "with_group": _with_group,
        "__doc__": "Every hyperprior of the model; defaults are the reference values of the design notes.",
    },
)
Priors.__module__ = __name__


@dataclass(frozen=True)
class FitConfig:
    """SVI settings. The defaults converge on the full Rossmann data, the demo and store subsets."""

    steps: int = 100
    learning_rate: float = 0.03
    optimizer: str = "adam"
    schedule: str = "cosine"
    final_lr_fraction: float = 0.05  # the schedule ends at learning_rate * final_lr_fraction
    # The rate ramps up over the first steps: Adam's first updates move every parameter by about
    # the learning rate whatever its gradient, which would throw a least-squares start off.
    warmup_steps: int = 20
    clip_norm: float = 10.0  # for clipped_adam
    particles: int = 1
    batch_size: int | None = None  # stores per step; None = full batch
    init: str = "least_squares"
    likelihood: str = "negative_binomial"  # the observation law (model.likelihoods)
    chunk_steps: int = 20  # steps between progress reports / cancellation points
    seed: int = 0

    def __post_init__(self):
        _check_number("FitConfig", "steps", self.steps, low=1, high=1_000_000, integer=True)
        _check_number("FitConfig", "learning_rate", self.learning_rate, low=0, high=10, low_open=True)
        _check_number("FitConfig", "final_lr_fraction", self.final_lr_fraction, low=0, high=1, low_open=True)
        _check_number("FitConfig", "warmup_steps", self.warmup_steps, low=0, high=1_000_000, integer=True)
        _check_number("FitConfig", "clip_norm", self.clip_norm, low=0, high=1e6, low_open=True)
        _check_number("FitConfig", "particles", self.particles, low=1, high=64, integer=True)
        _check_number("FitConfig", "chunk_steps", self.chunk_steps, low=1, high=100_000, integer=True)
        _check_number("FitConfig", "seed", self.seed, low=0, high=2**31 - 1, integer=True)
        if self.batch_size is not None:
            _check_number("FitConfig", "batch_size", self.batch_size, low=1, high=10_000_000, integer=True)
        from bhm_core.model import likelihoods

        choices = (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("init", INITS),
            ("likelihood", tuple(likelihoods.LIKELIHOODS)),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"FitConfig.{name} must be one of {list(allowed)}, got {getattr(self, name)!r}",
                    key=f"fit.{name}",
                    value=getattr(self, name),
                    allowed=f"one of {', '.join(allowed)}",
                )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FitConfig:
        _reject_unknown_fields(cls, data)
        return cls(**data)
