"""Prior editors, one expander per feature group, each with the densities its numbers imply;
and the prior predictive check of all of them together.

Widget values persist for the session (persist_state) and are seeded from the reference priors;
`load` writes a fit's priors into them (used when a fit is reopened, from a callback).
"""

from __future__ import annotations

import math

import streamlit as st

from bhm_core.data.features import FEATURE_GROUPS, GROUPS
from bhm_core.errors import BhmError, ConfigError
from bhm_core.forecast import prior_check
from bhm_core.model.config import EffectPrior, Priors
from ui.charts import fit as fit_charts
from ui.charts import style
from ui.session import figures, fit_results, state
from ui.views import labels

EFFECT_FIELDS = ("mu_loc", "mu_scale", "sigma_scale")
DISPERSION_FIELDS = ("r_mu_loc", "r_mu_scale", "r_sigma_scale", "w_scale")
LABELS = {
    "mu_loc": (
        labels.EFFECT["mu_loc"],
        "μ₀: where the chain-wide effect θ_μ is expected (log scale; 0 = no effect)",
    ),
    "mu_scale": (
        labels.EFFECT["mu_scale"],
        "s in θ_μ ~ Normal(μ₀, s): how far from μ₀ the chain-wide effect may plausibly be",
    ),
    "sigma_scale": (
        labels.EFFECT["sigma_scale"],
        "scale of θ_σ ~ HalfNormal(·): how much stores may differ from the chain (log scale; 0.1 ≈ ±10 %, 1 ≈ ×2.7)",
    ),
}


def _describe(group: str) -> tuple[str, str, str]:
    """Title, what exp(theta) means, help: the registry's words for the group."""
    entry = GROUPS[group]
    return entry.title, entry.meaning, entry.help


def _key(group: str, name: str) -> str:
    return f"{state.W_PRIOR}.{group}.{name}"


def load(priors: Priors) -> None:
    """Put these priors into the editors (call before they are drawn, e.g. from a callback)."""
    for group in FEATURE_GROUPS:
        for name in EFFECT_FIELDS:
            st.session_state[_key(group, name)] = float(getattr(getattr(priors, group), name))
    for name in DISPERSION_FIELDS:
        st.session_state[_key("dispersion", name)] = float(getattr(priors, name))


def current_priors() -> Priors:
    """The priors as last set in the editors (reference values where never touched), for pages
    without the editors. Raises ConfigError while they are invalid there."""
    reference = Priors()

    def value(group, name, default):
        remembered = st.session_state.get(_key(group, name))
        return float(default if remembered is None else remembered)

    changes = {
        group: EffectPrior(**{n: value(group, n, getattr(getattr(reference, group), n)) for n in EFFECT_FIELDS})
        for group in FEATURE_GROUPS
    }
    dispersion = {n: value("dispersion", n, getattr(reference, n)) for n in DISPERSION_FIELDS}
    return Priors(**changes, **dispersion)


def _centre_weekday(value: float) -> None:
    st.session_state[_key("weekday", "mu_loc")] = value


def editors(cube) -> Priors | None:
    """Draw the editors for the groups the data has; the priors, or None after showing why not."""
    reference = Priors()
    for group in FEATURE_GROUPS:
        for name in EFFECT_FIELDS:
            state.seed_widget(_key(group, name), float(getattr(getattr(reference, group), name)))
    for name in DISPERSION_FIELDS:
        state.seed_widget(_key("dispersion", name), float(getattr(reference, name)))
    row = st.container(horizontal=True)
    row.button(
        "Reference priors",
        on_click=load,
        args=(reference,),
        icon=":material/restart_alt:",
        help="Reset every prior to the reference values of the design notes",
    )
    row.button(
        "Centre weekday level on the data",
        on_click=_centre_weekday,
        args=(prior_check.data_centred_weekday(cube),),
        icon=":material/center_focus_strong:",
        help="Sets the weekday prior's centre to log(median observed daily sales)",
    )
    changes, problems = {}, []
    for group in dict.fromkeys(cube.design.groups):
        prior, problem = _group_editor(group)
        problems += [problem] if problem else []
        changes[group] = prior
    dispersion, problem = _dispersion_editor()
    problems += [problem] if problem else []
    if problems:
        st.error("Priors not valid yet: " + "; ".join(problems), icon=":material/error:")
        return None
    try:
        return Priors(**changes, **dispersion)
    except ConfigError as exc:
        st.error(labels.message(exc))
        return None


def _number(column, group, name, label, help_text, step=0.1):
    return column.number_input(
        label, step=step, format="%.3f", key=_key(group, name), help=help_text, persist_state="session"
    )


def _group_editor(group: str):
    title, meaning, help_text = _describe(group)
    values = {n: st.session_state[_key(group, n)] for n in EFFECT_FIELDS}
    try:
        prior = EffectPrior(**values)
        prior.check(group)
        problem = None
    except ConfigError as exc:
        prior, problem = None, labels.message(exc)
    with st.expander(f"**{title}**" + ("" if problem is None else "  :red[(invalid)]"), expanded=problem is not None):
        st.caption(help_text)
        cols = st.columns(3)
        for column, name in zip(cols, EFFECT_FIELDS):
            _number(column, group, name, *LABELS[name])
        if problem:
            st.error(problem)
            return None, problem
        lo, hi = prior_check.interval(prior)
        spread = prior_check.typical_spread(prior)
        st.caption(
            f"Prior 90 % range of the chain-wide {meaning}: ×{lo:.3g} to ×{hi:.3g}. Typical "
            f"store spread σ ≈ {spread:.2g}: most stores within ×{math.exp(-spread):.2g} to "
            f"×{math.exp(spread):.2g} of the chain."
        )
        figure = figures.prior_figure(
            prior.mu_loc,
            prior.mu_scale,
            prior.sigma_scale,
            f"chain-wide {meaning} (log axis)",
            "store-to-store spread σ",
        )
        st.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key=f"prior.{group}")
    return prior, None


def _dispersion_editor():
    values = {n: st.session_state[_key("dispersion", n)] for n in DISPERSION_FIELDS}
    try:
        Priors(**values)
        problem = None
    except ConfigError as exc:
        problem = labels.message(exc)
    with st.expander(
        f"**{labels.NOISE_TITLE}**" + ("" if problem is None else "  :red[(invalid)]"), expanded=problem is not None
    ):
        st.caption(
            "Day-to-day noise around the expected sales: Var = mean × (1 + eʳ) per store, with "
            "r = r_μ + r_σ w. e⁴ ≈ 55: at 5,000 €/day a standard deviation of about 520 €. "
            "With the Student-t law on log sales (Likelihood, under Inference) r sets the spread of "
            "log sales instead, the other way round: r = 5 is about ±9.5 %, a larger r a narrower law."
        )
        cols = st.columns(4)
        help_texts = (
            "Centre of r_μ, the chain's log extra-variance",
            "Uncertainty of r_μ",
            "Scale of r_σ ~ HalfNormal: spread of the noise level between stores",
            "Scale of the per-store offsets w ~ Normal(0, ·)",
        )
        for column, name, help_text in zip(cols, DISPERSION_FIELDS, help_texts):
            label = labels.DISPERSION[name]
            _number(column, "dispersion", name, label, help_text, step=0.05)
        if problem:
            st.error(problem)
            return values, problem
        figure = figures.prior_figure(
            float(values["r_mu_loc"]),
            float(values["r_mu_scale"]),
            float(values["r_sigma_scale"]),
            "extra variance factor eʳ (log axis)",
            "store spread of r",
        )
        st.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key="prior.dispersion")
    return values, None


def predictive_check(cube, priors: Priors, kind: str) -> None:
    """Expected daily sales the priors imply, against the data, before any fit."""
    try:
        prior_log10, observed = fit_results.prior_predictive(cube.fingerprint, repr(priors), cube, priors)
    except BhmError as exc:
        st.error(str(exc))
        return
    unit = style.CURRENCY_KINDS.get(kind, "sales") + "/day"
    cover = prior_check.coverage(prior_log10, observed)
    figure = figures.figure(
        f"prior.predictive|{cube.fingerprint}|{priors!r}|{unit}",
        lambda: fit_charts.prior_predictive_figure(prior_log10, observed, unit),
    )
    st.plotly_chart(figure, width="stretch", config={"displayModeBar": False}, key="prior.predictive")
    verdict = (
        "The priors put most of their weight on sales levels the data never show: they are "
        "vague, and the data will have to carry the fit."
        if cover["inside"] < 0.2
        else "The priors cover the range of the data."
    )
    st.caption(
        f"{cover['inside']:.0%} of the prior's draws fall inside the data's range "
        f"({cover['data_lo']:,.0f}–{cover['data_hi']:,.0f} {unit}, 1st–99th percentile); "
        f"{cover['below']:.0%} below, {cover['above']:.0%} above. Prior median "
        f"{_human(cover['prior_median'])}, 90 % of draws within {_human(cover['prior_p5'])} to "
        f"{_human(cover['prior_p95'])}. {verdict}"
    )


def _human(x: float) -> str:
    if x >= 1e6 or x < 0.01:
        return f"{x:.0e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    return f"{x:,.0f}" if x >= 100 else f"{x:.2g}"
