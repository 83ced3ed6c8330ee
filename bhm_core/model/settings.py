"""Everything a fit depends on, as one TOML file: the SVI settings, the priors and the features.

```toml
[fit]                 # FitConfig: steps, learning_rate, optimizer, schedule, batch_size, particles, seed, ...
[priors]              # Priors: the dispersion's hyperpriors (r_mu_loc, r_mu_scale, r_sigma_scale, w_scale)
[priors.promo]        # one table per feature group: mu_loc, mu_scale, sigma_scale
[features]            # FeatureSpec: which feature groups are on
```

Read with the standard library's tomllib, written with tomli-w, round trip exact. Every key is
optional (a missing one keeps its default); `batch_size` absent means full batch (TOML has no null).
Unknown keys, wrong types and values out of range raise ConfigError naming the file, the key, the
value and the allowed range, before any work starts.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import tomli_w

from bhm_core.data.features import FeatureSpec
from bhm_core.errors import ConfigError
from bhm_core.model.config import FitConfig, Priors

SECTIONS = ("fit", "priors", "features")


@dataclass(frozen=True)
class Settings:
    fit: FitConfig = field(default_factory=FitConfig)
    priors: Priors = field(default_factory=Priors)
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def to_dict(self) -> dict:
        fit = {k: v for k, v in self.fit.to_dict().items() if v is not None}
        return {"fit": fit, "priors": self.priors.to_dict(), "features": asdict(self.features)}

    def with_fit(self, **changes) -> Settings:
        """These settings with some FitConfig fields replaced (command-line flags over a file); None
        values are left out, so an option not given keeps the file's value."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, fit=replace(self.fit, **given)) if given else self


def to_toml(settings: Settings) -> str:
    return tomli_w.dumps(settings.to_dict())


def from_toml(text: str, source: str = "settings") -> Settings:
    """Settings from TOML text; `source` (the file's name) starts every error message."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    return from_dict(data, source)


def from_dict(data: dict, source: str = "settings") -> Settings:
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{unknown[0]}]; allowed: {', '.join(SECTIONS)}",
            key=unknown[0],
            allowed=", ".join(SECTIONS),
        )
    for name in SECTIONS:
        if not isinstance(data.get(name, {}), dict):
            raise ConfigError(f"{source}: {name} must be a table ([{name}]), got {data[name]!r}", key=name)
    try:
        return Settings(_fit(data.get("fit", {})), _priors(data.get("priors", {})), _features(data.get("features", {})))
    except ConfigError as exc:
        raise _located(exc, source) from None


def load(path: str | Path) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    return from_toml(text, path.name)


def save(settings: Settings, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(to_toml(settings), encoding="utf-8")
    return path


def _fit(data: dict) -> FitConfig:
    return FitConfig.from_dict(data)


def _priors(data: dict) -> Priors:
    defaults = Priors().to_dict()
    merged = {}
    for key, value in data.items():  # a group's table may give only some of its fields
        base = defaults.get(key)
        if isinstance(base, dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"priors.{key} is not a prior table",
                    key=f"priors.{key}",
                    value=value,
                    allowed=f"a table with {', '.join(base)}",
                )
            extra = sorted(set(value) - set(base))
            if extra:
                raise ConfigError(
                    f"unknown prior field priors.{key}.{extra[0]}",
                    key=f"priors.{key}.{extra[0]}",
                    value=value[extra[0]],
                    allowed=", ".join(base),
                )
            value = {**base, **value}
        merged[key] = value
    return Priors.from_dict(merged)


def _features(data: dict) -> FeatureSpec:
    known = [f.name for f in fields(FeatureSpec)]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ConfigError(
            f"unknown feature group {unknown[0]!r}",
            key=f"features.{unknown[0]}",
            value=data[unknown[0]],
            allowed=f"one of {', '.join(known)}",
        )
    return FeatureSpec(**data)


def _located(exc: ConfigError, source: str) -> ConfigError:
    """The error reworded for a file: its name, the key as written there, the value, the range."""
    if exc.key is None:
        return ConfigError(f"{source}: {exc}")
    if str(exc).startswith("unknown"):
        text = f"{source}: unknown key {exc.key} (allowed: {exc.allowed})"
    else:
        text = f"{source}: {exc.key} = {exc.value!r} is not allowed (allowed: {exc.allowed})"
    return ConfigError(text, key=exc.key, value=exc.value, allowed=exc.allowed)
