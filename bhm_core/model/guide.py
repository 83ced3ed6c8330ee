"""The variational guide, derived from the model's sites.

One independent Normal per latent in unconstrained space: which latents there are, whether each is
per store (inside the model's stores plate), its support (hence the bijection to unconstrained
space, e.g. exp for the HalfNormal spreads) and whether it is whitened all come from one trace of
`hierarchy.model`, never from a list kept by hand.

A site the model marks ``infer={"whiten": True}`` (the standardised coefficients z) is Normal in
whitened coordinates u of each store's *coefficients*, with a fixed per-store basis (`Whitening`,
from the start's Gaussian approximation of each store's posterior), drawn after, and with, the same
draw's hyper-parameters:

    theta_s = offset_s + shift_s theta_mu + chol_s u_s,        z_s = (theta_s - theta_mu) / theta_sigma

chol holds the strong correlations between a store's effects (its weekday, holiday and store-type
terms all shift its level), which a mean-field guide cannot, and SVI on u is well conditioned.
shift is how far the store's posterior mean moves with the chain's mean: about 0 for an effect the
store's own days pin down, about 1 for one they do not. A guide on z alone gets the first kind
wrong: with theta_mu drawn apart from z, every store's coefficients moved with each draw of the
chain's mean, which inflated forecast intervals until many steps had shrunk that guide's width (a
fit of 8 stores held 60 % / 95 % of sales in its 50 % / 90 % intervals after 100 steps, and
50 % / 90 % only after 800).

Guide parameters are a dict: site name -> SiteParams(loc, log_scale), plus `basis_name(site)` ->
Whitening for each whitened site (never trained).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.distributions.transforms import Transform, biject_to
from numpyro.infer.util import log_density

from bhm_core.model.hierarchy import (
    STORES_PLATE,
    ModelData,
    PriorArrays,
    chain_mean,
    model,
    standardised,
    standardised_log_jacobian,
)
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL, Likelihood
from bhm_core.model.tracing import TRACE_LOCK


class SiteParams(NamedTuple):
    loc: jnp.ndarray
    log_scale: jnp.ndarray


class Whitening(NamedTuple):
    """A whitened site's fixed per-store basis: theta_s = offset_s + shift_s theta_mu + chol_s u_s."""

    offset: jnp.ndarray  # (S, F)
    shift: jnp.ndarray  # (S, F, F)
    chol: jnp.ndarray  # (S, F, F) lower triangular, positive diagonal


# Sizes of the made-up problem the model is traced on: primes no fixed dimension of a site is
# likely to have, so each axis of a site's shape can be told to count stores, features, or neither.
TRACE_STORES, TRACE_FEATURES = 11, 13
STORES, FEATURES = "stores", "features"


@dataclass(frozen=True)
class GuideSite:
    name: str
    local: bool  # one row per store
    whitened: bool
    transform: Transform  # unconstrained -> the latent's support
    dims: tuple = ()  # the unconstrained shape: STORES, FEATURES or a fixed size per axis

    def constrain(self, x_unconstrained):
        return self.transform(x_unconstrained)

    def unconstrain(self, value):
        return self.transform.inv(value)

    def shape(self, n_stores: int, n_features: int) -> tuple:
        """The unconstrained shape of this site for a fit of n_stores and n_features."""
        sizes = {STORES: n_stores, FEATURES: n_features}
        return tuple(sizes.get(d, d) for d in self.dims)


def basis_name(site: str) -> str:
    return f"{site}_basis"


@cache
def guide_sites() -> tuple[GuideSite, ...]:
    """The model's latent sites, in name order (the order keys are split in), from one trace of
    the model on a made-up cell of a problem of TRACE_STORES stores and TRACE_FEATURES features."""
    one = np.ones(1, np.float32)
    stores = np.ones(TRACE_STORES, bool)
    data = ModelData(
        np.zeros(1, np.int32),
        np.zeros((1, 1), np.int32),
        one[:, None],
        one,
        one,
        one > 0,
        stores,
        np.float32(1),
        np.zeros(1, np.int32),
    )
    features = np.ones(TRACE_FEATURES, np.float32)
    prior = PriorArrays(features, features, features, *(np.float32(1),) * 4, features)
    traced = {}

    def trace_model():
        traced.update(handlers.trace(handlers.seed(model, 0)).get_trace(data, prior, NEGATIVE_BINOMIAL))

    with TRACE_LOCK:
        # Traced abstractly: only the sites' names, plates, supports and shapes are read, and an
        # eager trace would compile every primitive it meets (seconds on a cold start).
        jax.make_jaxpr(trace_model)()
    sites = []
    named = {TRACE_STORES: STORES, TRACE_FEATURES: FEATURES}
    for name, site in traced.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        local = any(frame.name == STORES_PLATE for frame in site["cond_indep_stack"])
        whitened = bool((site.get("infer") or {}).get("whiten"))
        transform = biject_to(site["fn"].support)
        dims = tuple(named.get(d, d) for d in transform.inverse_shape(site["fn"].shape()))
        sites.append(GuideSite(name, local, whitened, transform, dims))
    return tuple(sorted(sites, key=lambda s: s.name))


def site(name: str) -> GuideSite:
    return next(s for s in guide_sites() if s.name == name)


def local_sites() -> tuple[str, ...]:
    return tuple(s.name for s in guide_sites() if s.local)


def global_sites() -> tuple[str, ...]:
    return tuple(s.name for s in guide_sites() if not s.local)


def whitened_site() -> str:
    """The one site with a per-store whitening basis (the standardised coefficients)."""
    (name,) = (s.name for s in guide_sites() if s.whitened)
    return name


def per_store_entries() -> tuple[str, ...]:
    """Guide entries with one row per store: the local sites and the bases of whitened ones."""
    return local_sites() + tuple(basis_name(s.name) for s in guide_sites() if s.whitened)


def entry_shapes(n_stores: int, n_features: int) -> dict:
    """The shape of every field of every guide entry for a fit of n_stores and n_features, as
    the model's trace gives them (no new trace: safe beside a fit tracing in another thread).
    A whitened site's basis is listed too (a fit without a least-squares start has none)."""
    out = {}
    for spec in guide_sites():
        shape = spec.shape(n_stores, n_features)
        out[spec.name] = SiteParams(shape, shape)
        if spec.whitened:
            out[basis_name(spec.name)] = Whitening(shape, (*shape, shape[-1]), (*shape, shape[-1]))
    return out


def identity_whitening(n_stores: int, n_features: int) -> Whitening:
    """theta_s = theta_mu + u_s: the basis of padding stores (never scored)."""
    eye = np.broadcast_to(np.eye(n_features, dtype=np.float32), (n_stores, n_features, n_features)).copy()
    return Whitening(np.zeros((n_stores, n_features), np.float32), eye, eye.copy())


def _whitened(basis: Whitening, u, drawn: dict):
    """(z, log |dz/du| per store) of a whitened site for the same draw's hyper-parameters."""
    theta = (
        basis.offset
        + jnp.einsum("sfg,...g->...sf", basis.shift, chain_mean(drawn))
        + jnp.einsum("sfg,...sg->...sf", basis.chol, u)
    )
    log_det = jnp.sum(jnp.log(jnp.diagonal(basis.chol, axis1=-2, axis2=-1)), -1) + standardised_log_jacobian(drawn)
    return standardised(theta, drawn), log_det


def guide_draw(spec: GuideSite, params: SiteParams, eps, basis: Whitening | None = None, drawn: dict | None = None):
    """The site's guide draw from standard normals `eps` (leading sample axes allowed), a whitened
    site's for the hyper-parameters already `drawn`: (u, the unconstrained value, the value)."""
    u = params.loc + jnp.exp(params.log_scale) * eps
    unconstrained = _whitened(basis, u, drawn)[0] if spec.whitened and basis is not None else u
    return u, unconstrained, spec.constrain(unconstrained)


def draw_order(names) -> list[GuideSite]:
    """The model's sites among `names`, whitened ones last (they need the hyper-parameters' draw)."""
    specs = [s for s in guide_sites() if s.name in names]
    return [s for s in specs if not s.whitened] + [s for s in specs if s.whitened]


def guide_centre(params: dict) -> dict:
    """Each latent's value at the guide's centre (u at its location), as NumPy arrays.

    One compiled program: run op by op, its few dozen operations each compile on their first use
    in a process (a second of a fresh fit's time)."""
    return {name: np.asarray(value) for name, value in _centre(params).items()}


@jax.jit
def _centre(params: dict) -> dict:
    out = {}
    for spec in draw_order(params):
        out[spec.name] = guide_draw(spec, params[spec.name], 0.0, params.get(basis_name(spec.name)), out)[2]
    return out


def sample_guide(key, params: dict, local_scale=1.0, store_mask=None):
    """Draw one set of latents by reparameterisation: (their values, log q of them).

    Local sites' terms are multiplied by `local_scale`, matching the model's rescaled local priors
    when the params hold a store batch; stores where `store_mask` is False (padding) add nothing.
    """
    values, log_q = {}, 0.0
    specs = [s for s in guide_sites() if s.name in params]  # the keys follow the sites' name order
    keys = dict(zip((s.name for s in specs), jax.random.split(key, len(specs))))
    for spec in draw_order(params):
        site_params = params[spec.name]
        basis = params.get(basis_name(spec.name)) if spec.whitened else None
        eps = jax.random.normal(keys[spec.name], site_params.loc.shape)
        u = site_params.loc + jnp.exp(site_params.log_scale) * eps
        x, log_det = _whitened(basis, u, values) if basis is not None else (u, 0.0)
        values[spec.name] = spec.constrain(x)
        # log N(u; loc, scale), minus log|dx/du| of the whitening and of the support's bijection
        density = -0.5 * eps**2 - site_params.log_scale - 0.5 * jnp.log(2 * jnp.pi)
        bijection = spec.transform.log_abs_det_jacobian(x, values[spec.name])
        if spec.local:
            per_store = density.reshape(density.shape[0], -1).sum(-1) - log_det - bijection
            if store_mask is not None:
                per_store = jnp.where(store_mask, per_store, 0.0)
            log_q = log_q + local_scale * jnp.sum(per_store)
        else:
            log_q = log_q + jnp.sum(density) - jnp.sum(bijection)
    return values, log_q


def negative_elbo(
    key,
    params: dict,
    data: ModelData,
    prior: PriorArrays,
    likelihood: Likelihood = NEGATIVE_BINOMIAL,
    particles: int = 1,
):
    def one(k):
        values, log_q = sample_guide(k, params, local_scale=data.scale, store_mask=data.store_mask)
        log_p, _ = log_density(model, (data, prior, likelihood), {}, values)
        return log_q - log_p

    if particles == 1:  # vmap over one particle batches the gathers and triples the step time
        return one(key)
    return jnp.mean(jax.lax.map(one, jax.random.split(key, particles)))
