"""Observation laws of sales given the model's linear predictor.

A likelihood owns everything that depends on the law of one store-day: its log density (the model's
``y`` site), a constant of the data it wants computed once when cells are packed, the host-side
sampler forecasts draw from, and how its per-store dispersion parameter relates to the spread of
log sales (the start estimates the dispersion from least-squares residuals; a cold start turns it
back into a noise level). The model, the start and prediction reach the law only through this
interface, so another law is one subclass, registered under its name and chosen by
``FitConfig.likelihood``.

``eta`` is the log of the expected sales; ``dispersion`` is the law's own per-cell parameter, the
model's per-store ``r`` (unconstrained, any real value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from bhm_core.errors import ConfigError

MAX_POISSON_RATE = 1e15  # NumPy's Poisson sampler refuses larger rates (only a diverged fit has them)
LOG_MEAN_RANGE = (-50.0, 40.0)  # exp(-50): no sales; exp(40) > MAX_POISSON_RATE
LOG_DISPERSION_RANGE = (-30.0, 30.0)
# Share of a store-day's own variance kept when a chain-wide day shock takes its part of it.
IDIOSYNCRATIC_FLOOR = 0.25


class Likelihood:
    """The interface every observation law implements (see the module docstring)."""

    name: ClassVar[str]

    def cell_constant(self, y):
        """(n,) float32 a per-cell constant of the observed sales (passed back as ``constant`` to
        `distribution`); zeros when the law needs none. Computed once when packing every cell, or
        for a store batch's cells inside the compiled step: it must take JAX arrays."""
        return jnp.zeros(jnp.shape(y), jnp.float32)

    def distribution(self, eta, dispersion, constant) -> dist.Distribution:
        """The law of each cell's sales, batched over cells."""
        raise NotImplementedError

    def log_variance(self, mean, dispersion):
        """Approximate Var[log y] of a store-day with this mean and dispersion."""
        raise NotImplementedError

    def dispersion_for(self, log_variance, mean):
        """The dispersion whose `log_variance` at this mean is the given one (the start's guess)."""
        raise NotImplementedError

    def sample(
        self, rng: np.random.Generator, eta: np.ndarray, dispersion: np.ndarray, shock=None, shock_sd: float = 0.0
    ) -> np.ndarray:
        """Draws of sales, one per element of eta. ``shock`` (broadcast against eta): chain-wide
        log shocks N(0, shock_sd^2) shared by the stores of a day, which the draw carries while
        each store-day keeps the mean and spread the fit gives it."""
        raise NotImplementedError


LIKELIHOODS: dict[str, Likelihood] = {}


def register(likelihood: Likelihood) -> Likelihood:
    """Make a law available to `FitConfig.likelihood` (and to saved fits) under its name."""
    LIKELIHOODS[likelihood.name] = likelihood
    return likelihood


def get(name: str) -> Likelihood:
    try:
        return LIKELIHOODS[name]
    except KeyError:
        raise ConfigError(f"unknown likelihood {name!r}; allowed: {sorted(LIKELIHOODS)}") from None


# ----------------------------------------------------------------------------------------------
# Gamma-Poisson (negative binomial): the reference law


def nb_log_prob(log_mean, log_dispersion, y, lgamma_y1):
    """log NB(y | mean, Var = mean (1 + e^r)): concentration a = mean e^-r, rate e^-r.

    XLA's own lgamma is kept: Stirling series with a shift measured 3x faster alone but twice as
    slow inside the compiled SVI step, where it fuses worse.
    """
    a = jnp.exp(log_mean - log_dispersion)
    return gammaln(y + a) - gammaln(a) - lgamma_y1 - a * log_dispersion - (a + y) * jnp.log1p(jnp.exp(-log_dispersion))


class NegBinomialMean(dist.GammaPoisson):
    """Gamma-Poisson parameterised by its log mean and log-dispersion r: Var = mean (1 + exp(r)).

    Same law as GammaPoisson(mean * exp(-r), exp(-r)). log_prob is `nb_log_prob`, taking the linear
    predictor directly and lgamma(y + 1), a constant of the data, precomputed when given.
    """

    def __init__(self, log_mean, log_dispersion, lgamma_y1=None, *, validate_args=None):
        self.log_mean = log_mean
        self.log_dispersion = log_dispersion
        self.lgamma_y1 = lgamma_y1
        super().__init__(jnp.exp(log_mean - log_dispersion), jnp.exp(-log_dispersion), validate_args=validate_args)

    def log_prob(self, value):
        const = gammaln(value + 1.0) if self.lgamma_y1 is None else self.lgamma_y1
        return nb_log_prob(self.log_mean, self.log_dispersion, value, const)


@dataclass(frozen=True)
class NegativeBinomial(Likelihood):
    """y ~ GammaPoisson(mean e^-r, e^-r): E[y] = mean, Var[y] = mean (1 + e^r)."""

    name: ClassVar[str] = "negative_binomial"

    def cell_constant(self, y):
        return gammaln(jnp.asarray(y, jnp.float32) + 1.0)

    def distribution(self, eta, dispersion, constant):
        return NegBinomialMean(eta, dispersion, constant)

    def log_variance(self, mean, dispersion):
        # delta method: Var[log y] ~ Var[y] / mean^2
        return (1.0 + np.exp(dispersion)) / np.maximum(mean, 1e-12)

    def dispersion_for(self, log_variance, mean):
        return np.log(np.clip(log_variance * np.maximum(mean, 1.0) - 1.0, 1.0, 1e6))

    def sample(self, rng, eta, dispersion, shock=None, shock_sd=0.0):
        """Gamma then Poisson, on the host: NumPy's samplers are about 20x faster than JAX's on a
        CPU (rejection loops there run per element).

        A day's shock multiplies the mean and the Gamma gives up exactly as much relative
        variance, so a store-day's mean and spread stay what the fit says while the stores move
        together. A store-day whose own variance is too small to give that up (a big store's promo
        day: the variance of a Gamma-Poisson is proportional to its mean) keeps IDIOSYNCRATIC_FLOOR
        of it and carries a correspondingly smaller share of the shock.
        """
        # Clipped so that a diverged fit's extreme laws give 0 or MAX_POISSON_RATE, never NaN. In
        # float32 (the laws' own precision; every value below stays in its range): half the time of
        # float64 for the arithmetic and NumPy's float32 Gamma sampler.
        mu = np.clip(np.asarray(eta, np.float32), *LOG_MEAN_RANGE)
        r = np.clip(np.asarray(dispersion, np.float32), *LOG_DISPERSION_RANGE)
        variance = np.exp(r - mu)  # the Gamma's relative variance: Var = mean (1 + e^r)
        log_rate = mu
        if shock is not None and shock_sd > 0:
            # lognormal(s2) x Gamma(1/v') has relative variance (1 + v') e^s2 - 1: equal to v for
            # v' = (1 + v) e^-s2 - 1, which stays >= floor * v while s2 <= log((1 + v) / (1 + floor v)).
            s2 = np.minimum(np.float32(shock_sd**2), np.log1p(variance) - np.log1p(IDIOSYNCRATIC_FLOOR * variance))
            variance = np.expm1(np.log1p(variance) - s2)  # (1 + v) e^-s2 - 1, exact for tiny v
            # E[exp(shock)] = exp(s2 / 2)
            log_rate = mu + np.sqrt(s2) / np.float32(shock_sd) * np.asarray(shock, np.float32) - 0.5 * s2
        rate = rng.standard_gamma(1.0 / variance, dtype=np.float32) * (np.exp(log_rate) * variance)
        return rng.poisson(np.minimum(rate, MAX_POISSON_RATE))


NEGATIVE_BINOMIAL = register(NegativeBinomial())
