"""Priors and fit settings: frozen, validated, hashable (they are part of a fit's cache key)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from bhm_core.data.features import FEATURE_GROUPS
from bhm_core.errors import ConfigError

OPTIMIZERS = ("adam", "clipped_adam")
SCHEDULES = ("constant", "cosine", "exponential")
INITS = ("least_squares", "prior")


def _check_number(owner: str, name: str, value, *, low=None, high=None, low_open=False, integer=False) -> None:
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{owner}.{name} must be {kind}, got {value!r}")
    below = value <= low if low_open else value < low if low is not None else False
    if below or (high is not None and value > high):
        left = "(" if low_open else "["
        raise ConfigError(
            f"{owner}.{name} must be in {left}{low}, {high if high is not None else 'inf'}], got {value!r}"
        )


def _reject_unknown_fields(cls, data: dict) -> None:
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s) {sorted(unknown)}")


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


@dataclass(frozen=True)
class Priors:
    """Every hyperprior of the model; defaults are the reference values of the design notes."""

    weekday: EffectPrior = field(default_factory=EffectPrior)
    promo: EffectPrior = field(default_factory=EffectPrior)
    state_holiday: EffectPrior = field(default_factory=EffectPrior)
    school_holiday: EffectPrior = field(default_factory=EffectPrior)
    promo2: EffectPrior = field(default_factory=EffectPrior)
    store_variant: EffectPrior = field(default_factory=EffectPrior)
    yearly: EffectPrior = field(default_factory=EffectPrior)
    promo_weekday: EffectPrior = field(default_factory=EffectPrior)
    day_of_month: EffectPrior = field(default_factory=EffectPrior)
    month: EffectPrior = field(default_factory=EffectPrior)
    holiday_window: EffectPrior = field(default_factory=EffectPrior)
    promo2_active: EffectPrior = field(default_factory=EffectPrior)
    trend: EffectPrior = field(default_factory=EffectPrior)
    promo_window: EffectPrior = field(default_factory=EffectPrior)
    christmas: EffectPrior = field(default_factory=EffectPrior)
    trend_changes: EffectPrior = field(default_factory=EffectPrior)
    closure_window: EffectPrior = field(default_factory=EffectPrior)
    competition: EffectPrior = field(default_factory=EffectPrior)
    school_weekday: EffectPrior = field(default_factory=EffectPrior)
    season: EffectPrior = field(default_factory=EffectPrior)
    carnival: EffectPrior = field(default_factory=EffectPrior)
    easter: EffectPrior = field(default_factory=EffectPrior)
    recent_level: EffectPrior = field(default_factory=EffectPrior)
    r_mu_loc: float = 4.0  # log-dispersion: Var[y] = E[y] (1 + exp(r))
    r_mu_scale: float = 1.0
    r_sigma_scale: float = 1.0
    w_scale: float = 0.1  # scale of the per-store dispersion offsets

    def __post_init__(self):
        for group in FEATURE_GROUPS:
            prior = getattr(self, group)
            if not isinstance(prior, EffectPrior):
                raise ConfigError(f"Priors.{group} must be an EffectPrior, got {prior!r}")
            prior.check(group)
        _check_number("Priors", "r_mu_loc", self.r_mu_loc, low=-20, high=20)
        for name in ("r_mu_scale", "r_sigma_scale", "w_scale"):
            _check_number("Priors", name, getattr(self, name), low=0, high=100, low_open=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Priors:
        _reject_unknown_fields(cls, data)
        values = {k: EffectPrior(**v) if k in FEATURE_GROUPS else v for k, v in data.items()}
        return cls(**values)

    def with_group(self, group: str, **changes) -> Priors:
        return replace(self, **{group: replace(getattr(self, group), **changes)})


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
        from bhm_core.model import likelihoods  # brings JAX: not at import, so the Data page stays light

        choices = (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("init", INITS),
            ("likelihood", tuple(likelihoods.LIKELIHOODS)),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"FitConfig.{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FitConfig:
        _reject_unknown_fields(cls, data)
        return cls(**data)
