"""The variational guide, derived from the model's sites.

One independent Normal per latent in unconstrained space: which latents there are, whether each is
per store (inside the model's stores plate), its support (hence the bijection to unconstrained
space, e.g. exp for the HalfNormal spreads) and whether it is whitened all come from one trace of
`hierarchy.model`, never from a list kept by hand. A site the model marks ``infer={"whiten": True}``
(the standardised coefficients z) is Normal in whitened coordinates u, ``x = center + chol u``, with a
fixed per-store basis (`Whitening`, from the start's Gaussian approximation of each store's
posterior): the guide then holds the strong correlations between a store's effects that a mean-field
guide on x itself cannot, and SVI on u is well conditioned.

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

from bhm_core.model.hierarchy import STORES_PLATE, ModelData, PriorArrays, model
from bhm_core.model.likelihoods import NEGATIVE_BINOMIAL, Likelihood


class SiteParams(NamedTuple):
    loc: jnp.ndarray
    log_scale: jnp.ndarray


class Whitening(NamedTuple):
    """A fixed affine map per store for a whitened site's guide: x_s = center_s + chol_s u_s."""

    center: jnp.ndarray  # (S, F)
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
        np.zeros(1, np.int32), np.zeros((1, 1), np.int32), one[:, None], one, one, one > 0, stores, np.float32(1)
    )
    features = np.ones(TRACE_FEATURES, np.float32)
    prior = PriorArrays(features, features, features, *(np.float32(1),) * 4)
    trace = handlers.trace(handlers.seed(model, 0)).get_trace(data, prior, NEGATIVE_BINOMIAL)
    sites = []
    named = {TRACE_STORES: STORES, TRACE_FEATURES: FEATURES}
    for name, site in trace.items():
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
            out[basis_name(spec.name)] = Whitening(shape, (*shape, shape[-1]))
    return out


def identity_whitening(n_stores: int, n_features: int) -> Whitening:
    return Whitening(
        np.zeros((n_stores, n_features), np.float32),
        np.broadcast_to(np.eye(n_features, dtype=np.float32), (n_stores, n_features, n_features)).copy(),
    )


def unwhiten(basis: Whitening | None, u):
    """x from the whitened coordinates u (..., S, F); identity without a basis."""
    if basis is None:
        return u
    return basis.center + jnp.einsum("sfg,...sg->...sf", basis.chol, u)


def guide_draw(spec: GuideSite, params: SiteParams, eps, basis: Whitening | None = None):
    """The site's guide draw from standard normals `eps` (leading sample axes allowed):
    (u, the unconstrained value, the latent's value)."""
    u = params.loc + jnp.exp(params.log_scale) * eps
    unconstrained = unwhiten(basis, u) if spec.whitened else u
    return u, unconstrained, spec.constrain(unconstrained)


def guide_centre(params: dict) -> dict:
    """Each latent's value at the guide's centre (u at its location), as NumPy arrays."""
    out = {}
    for spec in guide_sites():
        if spec.name in params:
            _, _, value = guide_draw(spec, params[spec.name], 0.0, params.get(basis_name(spec.name)))
            out[spec.name] = np.asarray(value)
    return out


def sample_guide(key, params: dict, local_scale=1.0):
    """Draw one set of latents by reparameterisation: (their values, log q of them).

    Local sites' terms are multiplied by `local_scale`, matching the model's rescaled local priors
    when the params hold a store batch.
    """
    values, log_q = {}, 0.0
    specs = [s for s in guide_sites() if s.name in params]
    for k, spec in zip(jax.random.split(key, len(specs)), specs):
        site_params = params[spec.name]
        basis = params.get(basis_name(spec.name)) if spec.whitened else None
        eps = jax.random.normal(k, site_params.loc.shape)
        _, unconstrained, values[spec.name] = guide_draw(spec, site_params, eps, basis)
        # log N(u; loc, scale) minus log|dx/du|: the whitening's, then the support's bijection
        term = jnp.sum(-0.5 * eps**2 - site_params.log_scale - 0.5 * jnp.log(2 * jnp.pi))
        if basis is not None:
            term = term - jnp.sum(jnp.log(jnp.diagonal(basis.chol, axis1=-2, axis2=-1)))
        term = term - jnp.sum(spec.transform.log_abs_det_jacobian(unconstrained, values[spec.name]))
        log_q = log_q + (term * local_scale if spec.local else term)
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
        values, log_q = sample_guide(k, params, local_scale=data.scale)
        log_p, _ = log_density(model, (data, prior, likelihood), {}, values)
        return log_q - log_p

    if particles == 1:  # vmap over one particle batches the gathers and triples the step time
        return one(key)
    return jnp.mean(jax.lax.map(one, jax.random.split(key, particles)))
