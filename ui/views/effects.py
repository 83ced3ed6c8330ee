"""The Effects page's parts: which effects to show, another fit to overlay, and the three views
(chain-wide densities, per-store strips, shrinkage)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.data.features import group_title
from bhm_core.errors import BhmError
from bhm_core.forecast.effects import summary_table
from ui.charts import effects as effect_charts
from ui.session import figures, fit_results, fits, loaders


def choose_effects(tables: dict) -> tuple[list[str], list[str]]:
    """Effects (and their groups) to show, in contrast order."""
    frame = tables["global"][["effect", "group"]].drop_duplicates()
    groups = list(dict.fromkeys(frame["group"]))
    left, right = st.columns([3, 1.3], vertical_alignment="bottom")
    chosen = left.multiselect(
        "Feature groups",
        groups,
        default=groups,
        format_func=group_title,
        key=f"w.fx.groups.{'-'.join(groups)}",
        persist_state="session",
    )
    hide = right.toggle(
        "Hide effects the data never show",
        value=True,
        key="w.fx.hide_unseen",
        persist_state="session",
        help="An effect whose feature has no observed day (e.g. Sundays in a chain "
        "closed on Sundays) is only its prior",
    )
    days = tables.get("days", pd.Series(dtype=int))
    unseen = [e for e in frame["effect"] if days.get(e, 1) == 0]
    keep = frame[frame["group"].isin(chosen) & ~(hide & frame["effect"].isin(unseen))]
    if hide and unseen:
        st.caption(f"Hidden, no observed days: {', '.join(unseen)}.")
    return keep["effect"].tolist(), keep["group"].tolist()


def overlay_choice(fit, saved_keys: list[str], seen: tuple):
    """Another saved fit (same features) to overlay: (label, its global effect samples) or None."""
    others = [k for k in saved_keys if k != fit.key]
    key = st.selectbox(
        "Overlay another saved fit (e.g. to see what a prior change did)",
        others,
        index=None,
        format_func=lambda k: k[:12],
        placeholder="None",
        key="w.fx.overlay",
        disabled=not others,
        help=None if others else "No other saved fits yet",
    )
    if key is None:
        return None
    try:
        other = loaders.saved_fit(str(fits.fit_store().root), key)
    except BhmError as exc:
        st.error(str(exc))
        return None
    if tuple(other.feature_names) != tuple(fit.result.feature_names):
        st.error(f"Fit {key[:12]} has other features ({len(other.feature_names)}); it cannot be overlaid.")
        return None
    return f"other fit {key[:8]}", fit_results.effect_tables(key, seen, other)["global"]


def densities(tables: dict, fit, overlay, effects: list[str], groups: list[str]) -> None:
    samples = {f"current fit {fit.key[:8]}": tables["global"]}
    if overlay is not None:
        samples[overlay[0]] = overlay[1]
    figure = figures.figure(
        f"fx.ridge|{fit.key}|{list(samples)}|{effects}|{groups}",
        lambda: effect_charts.ridgeline_figure(samples, effects, groups),
    )
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="fx.ridgeline")
    with st.expander("Medians and 90 % intervals"):
        tables_by_fit = [summary_table(s).set_index("effect").add_prefix(f"{label}: ") for label, s in samples.items()]
        table = pd.concat(tables_by_fit, axis=1).reindex(effects).round(3)
        st.dataframe(table, height=min(600, 38 + 35 * len(table)))


def per_store(tables: dict, effects: list[str], groups: list[str], fit_key: str) -> None:
    def build():
        medians = summary_table(tables["global"]).set_index("effect")["median"]
        return effect_charts.store_strip_figure(tables["stores"], medians, effects, groups)

    st.plotly_chart(
        figures.figure(f"fx.strip|{fit_key}|{effects}|{groups}", build),
        width="stretch",
        config={"displaylogo": False},
        key="fx.strip",
    )


def shrinkage(tables: dict, effects: list[str], fit_key: str) -> None:
    frame = tables.get("shrinkage")
    if frame is None or not effects:
        st.caption("Shrinkage needs the fit's data and at least one effect shown.")
        return
    default = effects.index("Promo day") if "Promo day" in effects else 0
    effect = st.selectbox("Effect", effects, index=default, key="w.fx.shrink_effect")

    def build():
        medians = summary_table(tables["global"]).set_index("effect")["median"]
        return effect_charts.shrinkage_figure(frame[frame["effect"] == effect], effect, float(medians[effect]))

    st.plotly_chart(
        figures.figure(f"fx.shrink|{fit_key}|{effect}", build),
        width="stretch",
        config={"displaylogo": False},
        key="fx.shrinkage",
    )
    st.caption(
        "Each dot is a store: its own least-squares estimate (log sales on the features, that "
        "store alone) against the hierarchical model's. Dots on the dashed diagonal are not "
        "shrunk; stores with few observed days (small dots) are pulled toward the chain's "
        "effect (dotted line)."
    )
