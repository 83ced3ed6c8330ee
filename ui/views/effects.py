"""The Effects page's parts: which groups to show, another fit to overlay, the true values of
synthetic data, and the three views (chain-wide densities, per-store strips, shrinkage), each a
compact chart per feature group with its own axis.

Effects are keyed by id (the feature's name) everywhere; labels are only drawn, never parsed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.data.features import group_title
from bhm_core.errors import BhmError
from bhm_core.forecast.effects import summary_table
from ui.charts import effects as effect_charts
from ui.session import figures, fit_results, fits, loaders

DEFAULT_GROUPS = ("weekday", "promo", "state_holiday", "school_holiday")
COLUMNS = 2  # charts of small groups side by side
WIDE = 8  # a group with more effects than this gets the whole width


def _groups_key(groups: list[str]) -> str:
    return f"w.fx.groups.{'-'.join(groups)}"


def _set_groups(key: str, groups: list[str]) -> None:
    st.session_state[key] = list(groups)


def choose_effects(tables: dict) -> dict[str, list[str]]:
    """{group: effect ids} to show, in contrast order: weekday, promo and holidays by default, every
    group one click away."""
    frame = tables["global"][["id", "effect", "group"]].drop_duplicates("id")
    groups = list(dict.fromkeys(frame["group"]))
    default = [g for g in DEFAULT_GROUPS if g in groups] or groups[:3]
    key = _groups_key(groups)
    left, middle, right = st.columns([3, 1, 1.3], vertical_alignment="bottom")
    chosen = left.multiselect(
        "Feature groups", groups, default=default, format_func=group_title, key=key, persist_state="session"
    )
    showing_all = len(chosen) == len(groups)
    middle.button(
        "Weekday, promo, holidays" if showing_all else f"All {len(groups)} groups",
        on_click=_set_groups,
        args=(key, default if showing_all else groups),
        width="stretch",
        key="fx.all_groups",
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
    unseen = set(frame["id"][[days.get(i, 1) == 0 for i in frame["id"]]])
    keep = frame[frame["group"].isin(chosen) & ~(hide & frame["id"].isin(unseen))]
    hidden = frame[frame["group"].isin(chosen) & frame["id"].isin(unseen)]
    if hide and len(hidden):
        st.caption(f"Hidden, no observed days: {', '.join(hidden['effect'])}.")
    return {g: keep.loc[keep["group"] == g, "id"].tolist() for g in chosen if (keep["group"] == g).any()}


def labels_of(tables: dict) -> dict:
    frame = tables["global"][["id", "effect"]].drop_duplicates("id")
    return dict(zip(frame["id"], frame["effect"]))


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


def _grid(chosen: dict):
    """(group, ids, container) for each group: small groups two to a row, large ones alone."""
    row, used = None, COLUMNS
    for group, ids in chosen.items():
        if len(ids) > WIDE:
            yield group, ids, st.container()
            used = COLUMNS
            continue
        if used >= COLUMNS:
            row, used = st.columns(COLUMNS, gap="medium"), 0
        yield group, ids, row[used]
        used += 1


def densities(tables: dict, fit, overlay, chosen: dict, truth=None) -> None:
    samples = {f"current fit {fit.key[:8]}": tables["global"]}
    if overlay is not None:
        samples[overlay[0]] = overlay[1]
    labels = labels_of(tables)
    true_chain = None if truth is None else truth["chain"]
    for group, ids, where in _grid(chosen):
        figure = figures.figure(
            f"fx.ridge|{fit.key}|{list(samples)}|{ids}|{truth is not None}",
            lambda ids=ids, group=group: effect_charts.ridgeline_figure(
                samples, ids, labels, true_chain, f"{group_title(group)} (×, log scale)"
            ),
        )
        where.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=f"fx.ridge.{group}")
    with st.expander("Medians and 90 % intervals, as a table"):
        st.dataframe(_summary(samples, chosen, truth), hide_index=True, height=400)


def _summary(samples: dict, chosen: dict, truth) -> pd.DataFrame:
    """One row per effect shown: its group, each fit's median and 90 % interval, the true value."""
    ids = [i for group_ids in chosen.values() for i in group_ids]
    parts = []
    for n, (label, frame) in enumerate(samples.items()):
        table = summary_table(frame).set_index("id").reindex(ids)
        if n == 0:
            parts.append(table[["effect", "group"]].assign(group=lambda t: t["group"].map(group_title)))
        parts.append(table[["median", "lo_90", "hi_90"]].add_prefix(f"{label}: "))
    out = pd.concat(parts, axis=1)
    if truth is not None:
        out["true value (demo)"] = truth["chain"].reindex(ids)
    names = {"effect": "Effect", "group": "Group"}
    out = out.rename(columns=lambda c: names.get(c, c.replace("lo_90", "5 %").replace("hi_90", "95 %")))
    return out.round(3)


def per_store(tables: dict, chosen: dict, fit_key: str) -> None:
    labels = labels_of(tables)
    medians = summary_table(tables["global"]).set_index("id")["median"]
    for group, ids, where in _grid(chosen):
        figure = figures.figure(
            f"fx.strip|{fit_key}|{ids}",
            lambda ids=ids: effect_charts.store_strip_figure(tables["stores"], medians, ids, labels),
        )
        where.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key=f"fx.strip.{group}")


def shrinkage(tables: dict, chosen: dict, fit_key: str, truth=None) -> None:
    frame = tables.get("shrinkage")
    ids = [i for group_ids in chosen.values() for i in group_ids]
    if frame is None or not ids:
        st.caption("Shrinkage needs the fit's data and at least one effect shown.")
        return
    labels = labels_of(tables)
    default = ids.index("promo") if "promo" in ids else 0
    effect = st.selectbox("Effect", ids, index=default, format_func=labels.get, key="w.fx.shrink_effect")
    medians = summary_table(tables["global"]).set_index("id")["median"]
    true_stores = None
    if truth is not None:
        mine = truth["stores"][truth["stores"]["id"] == effect]
        true_stores = pd.Series(mine["true"].to_numpy(), index=mine["store"].to_numpy())
    figure = figures.figure(
        f"fx.shrink|{fit_key}|{effect}|{truth is not None}",
        lambda: effect_charts.shrinkage_figure(
            frame[frame["id"] == effect], labels[effect], float(medians[effect]), true_stores
        ),
    )
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="fx.shrinkage")
    st.caption(
        "Each dot is a store: its own least-squares estimate (log sales on the features, that "
        "store alone) against the hierarchical model's. Dots on the dashed diagonal are not "
        "shrunk; stores with few observed days (small dots) are pulled toward the chain's "
        "effect (dotted line)." + (" Crosses: each store's true value." if truth is not None else "")
    )
    if truth is not None and effect in truth["hits"].index:
        hit = truth["hits"].loc[effect]
        st.markdown(
            f"**Against the truth:** the 90 % interval of {int(hit['inside'])} of {int(hit['stores'])} "
            f"stores ({hit['share']:.0%}) holds the store's true {labels[effect]} effect (ideal: about 90 %)."
        )
    elif truth is not None:
        st.caption(
            f"No true value to compare for {labels[effect]}: the data cannot tell it apart from other "
            "features that are on on the same days (promo and promo × weekday, a store's promo2 flag and "
            "its level), so the truth's split and the fit's may differ and both be right."
        )


def truth_caption(truth, chosen: dict) -> str:
    """How the chain-wide intervals of the effects shown did against the demo's true values."""
    if truth is None:
        return ""
    ids = [i for group_ids in chosen.values() for i in group_ids]
    hits = truth["chain_hits"].reindex(ids).dropna(subset=["true"])
    if hits.empty:
        return ""
    return (
        f" Red ticks: the true values of the synthetic data, where the data identify the effect; "
        f"{int(hits['inside'].sum())} of {len(hits)} chain-wide 90 % intervals shown hold theirs."
    )
