"""Observation laws of sales given the model's linear predictor.

A likelihood owns everything that depends on the law of one store-day: its log density (the model's
``y`` site), a constant of the data it wants computed once when cells are packed, the host-side
sampler forecasts draw from, and how its per-store dispersion parameter relates to the spread of
log sales (the start estimates the dispersion from least-squares residuals; a cold start turns it
back into a noise level). The model, the start and prediction reach the law only through this
interface, so another law is one subclass, registered under its name and chosen by
``FitConfig.likelihood``.

``eta`` is the law's log level (the log of the expected sales for the Gamma-Poisson, the median of
log(1 + sales) for the Student-t on log sales); ``dispersion`` is the law's own per-cell parameter,
the model's per-store ``r`` (unconstrained, any real value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
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


# ----------------------------------------------------------------------------------------------
# Student-t on log sales: a peaked, heavy-tailed law of the relative error


class LogStudentTLaw(dist.Distribution):
    """log(1 + y) ~ StudentT(df, eta, exp(-r / 2)), as a law of y (the Jacobian 1 / (1 + y) included).

    ``log1p_y`` is log(1 + y), a constant of the data, precomputed when given."""

    arg_constraints: ClassVar[dict] = {}
    support = dist.constraints.nonnegative

    def __init__(self, df, eta, log_dispersion, log1p_y=None, *, validate_args=None):
        self.df, self.eta, self.log_dispersion, self.log1p_y = df, eta, log_dispersion, log1p_y
        super().__init__(batch_shape=jnp.broadcast_shapes(jnp.shape(eta), jnp.shape(log_dispersion)))

    def log_prob(self, value):
        z = jnp.log1p(value) if self.log1p_y is None else self.log1p_y
        df = self.df
        log_scale = -0.5 * self.log_dispersion
        u = (z - self.eta) * jnp.exp(-log_scale)
        norm = gammaln(0.5 * (df + 1.0)) - gammaln(0.5 * df) - 0.5 * jnp.log(df * jnp.pi)
        return norm - log_scale - 0.5 * (df + 1.0) * jnp.log1p(u * u / df) - z

    def sample(self, key, sample_shape=()):
        t = jax.random.t(key, self.df, sample_shape + self.batch_shape)
        return jnp.expm1(self.eta + jnp.exp(-0.5 * self.log_dispersion) * t)


@dataclass(frozen=True)
class LogStudentT(Likelihood):
    """log(1 + y) ~ StudentT(DF, eta, exp(-r / 2)): eta is the median of log sales and r sets the
    spread, Var[log(1 + y)] = e^-r DF / (DF - 2): a larger r, a narrower law (for the Gamma-Poisson,
    a wider one). At Rossmann's spread (~0.09 in log) r is about 5, inside the dispersion's default
    prior N(4, 1).

    The Gamma-Poisson's log sales are close to Gaussian with a long lower tail; the relative errors
    of store-days are more peaked, with long tails on both sides (holidays the features miss,
    refurbishments, local events). A t-law gives such days less weight in the fit and puts the
    central intervals where most days are.
    """

    name: ClassVar[str] = "log_student_t"
    # Degrees of freedom, measured on Rossmann's backtests: 3 puts so much mass in the tails that the
    # forecasts' means and RMSPE points come from a few extreme draws (RMSPE 0.128 at 2015-06-19);
    # 5 and 8 both beat the Gamma-Poisson, 8 by a little more (docs/experiments.md).
    DF: ClassVar[float] = 8.0

    def cell_constant(self, y):
        return jnp.log1p(jnp.asarray(y, jnp.float32))

    def distribution(self, eta, dispersion, constant):
        return LogStudentTLaw(self.DF, eta, dispersion, constant)

    def log_variance(self, mean, dispersion):
        """The spread of log sales does not depend on the level here; broadcast against the mean."""
        value = np.exp(-np.asarray(dispersion, np.float64)) * self.DF / (self.DF - 2.0)
        return np.broadcast_to(value, np.broadcast_shapes(np.shape(mean), np.shape(value))).copy()

    def dispersion_for(self, log_variance, mean):
        scale2 = np.maximum(np.asarray(log_variance, np.float64), 1e-8) * (self.DF - 2.0) / self.DF
        value = np.clip(-np.log(scale2), *LOG_DISPERSION_RANGE)
        return np.broadcast_to(value, np.broadcast_shapes(np.shape(mean), np.shape(value))).copy()

    def sample(self, rng, eta, dispersion, shock=None, shock_sd=0.0):
        """A day's shock takes its variance out of the law's (at most 1 - IDIOSYNCRATIC_FLOOR of it),
        as for the Gamma-Poisson: a store-day's median and spread stay what the fit says."""
        mu = np.clip(np.asarray(eta, np.float32), *LOG_MEAN_RANGE)
        r = np.clip(np.asarray(dispersion, np.float32), *LOG_DISPERSION_RANGE)
        ratio = np.float32(self.DF / (self.DF - 2.0))
        variance = np.exp(-r) * ratio
        log_y = mu
        if shock is not None and shock_sd > 0:
            s2 = np.minimum(np.float32(shock_sd**2), (1.0 - IDIOSYNCRATIC_FLOOR) * variance)
            variance = variance - s2
            log_y = mu + np.sqrt(s2) / np.float32(shock_sd) * np.asarray(shock, np.float32)
        t = rng.standard_t(self.DF, size=np.broadcast_shapes(np.shape(log_y), np.shape(variance))).astype(np.float32)
        log_y = np.minimum(log_y + np.sqrt(variance / ratio) * t, LOG_MEAN_RANGE[1])
        return np.rint(np.maximum(np.expm1(log_y), 0.0)).astype(np.int64)


register(LogStudentT())
