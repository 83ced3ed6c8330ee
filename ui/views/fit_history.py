"""Saved fits (FitStore.list plus each record): a table to reopen, compare, download or delete from."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.errors import BhmError
from bhm_core.forecast.effects import summary_table
from bhm_core.model.config import Priors
from ui.charts import fit as fit_charts
from ui.session import fit_results, fits, loaders, state
from ui.views import prior_editor, svi_settings


def _priors_text(saved: dict) -> str:
    reference = Priors().to_dict()
    changed = [name for name, value in saved.items() if reference.get(name) != value]
    return "reference" if not changed else "changed: " + ", ".join(changed)


def history_frame(cube, current_key: str | None) -> pd.DataFrame:
    """One row per saved fit, from the records alone (FitStore.list); stale ones say so."""
    store = fits.fit_store()
    root = str(store.root)
    rows = []
    for item in store.list().itertuples():
        usable = (
            "other versions"
            if item.stale
            else loaders.fit_usability(
                cube.fingerprint, root, item.key, item.arrays_sha256, str(item.data_fingerprint), cube
            )
        )
        batch = item.batch_size
        rows.append(
            {
                "Current": item.key == current_key,
                "Created": item.created,
                "Data in use": usable,
                "Stores": item.n_stores,
                "Steps": item.steps,
                "Final loss": item.final_loss,
                "Priors": _priors_text(item.priors),
                "Seconds": item.seconds,
                "Optimizer": item.optimizer,
                "Learning rate": item.learning_rate,
                "Schedule": item.schedule,
                "Batch": None if pd.isna(batch) else int(batch),
                "Seed": item.seed,
                "Data": item.label,
                "Data fingerprint": str(item.data_fingerprint or "")[:12],
                "Key": item.key,
            }
        )
    return pd.DataFrame(rows)


def _reopen(key: str) -> None:
    fits.reopen(key)
    now = st.session_state.get(state.FIT)
    if now is not None and now.key == key:
        prior_editor.load(now.result.priors)
        svi_settings.load(now.result.config)
        state.set_selected_stores(now.result.store_ids.tolist())


def table(cube, current) -> list[str]:
    """The saved fits as a selectable table with actions for the selected one; returns their keys."""
    frame = history_frame(cube, current.key if current else None)
    if frame.empty:
        st.caption(f"No saved fits yet in {fits.fit_store().root}.")
        return []
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        height=min(400, 38 + 35 * len(frame)),
        key=f"w.fit_history.{hash(tuple(frame['Key']))}",
        column_config={
            "Current": st.column_config.CheckboxColumn("Current", width="small"),
            "Final loss": st.column_config.NumberColumn(format="%.1f"),
            "Seconds": st.column_config.NumberColumn(format="%.1f"),
            "Learning rate": st.column_config.NumberColumn(format="%.4g"),
            "Key": st.column_config.TextColumn(width="small"),
        },
    )
    rows = event.selection.rows
    if rows:
        chosen = frame.iloc[rows[0]]
        actions(chosen["Key"], chosen["Data in use"] == "yes")
    else:
        st.caption("Select a row to reopen, download or delete that fit.")
    return frame["Key"].tolist()


def actions(key: str, usable: bool) -> None:
    row = st.container(horizontal=True)
    row.button(
        "Reopen (make current)",
        icon=":material/open_in_new:",
        on_click=_reopen,
        args=(key,),
        disabled=not usable,
        key="fit.reopen",
        help=None if usable else "Made on other data, or unreadable: load its data first",
    )
    row.download_button(
        "Download (zip)",
        data=lambda: fits.zip_bytes(key),
        file_name=f"fit-{key}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/download:",
        key="fit.download",
    )
    with row.popover("Delete", icon=":material/delete:"):
        st.markdown(f"Delete saved fit `{key}`? This cannot be undone.")
        st.button("Delete for good", type="primary", on_click=fits.delete, args=(key,), key="fit.delete")


def compare(cube, current, keys: list[str]) -> None:
    """Loss curves and effect medians of the current fit next to another saved fit."""
    others = [k for k in keys if current is None or k != current.key]
    if current is None or not others:
        st.caption("Compare needs a current fit and another saved fit.")
        return
    other_key = st.selectbox(
        "Compare the current fit with",
        others,
        index=None,
        key="fit.compare",
        format_func=lambda k: k[:12],
        placeholder="Choose a saved fit",
    )
    if other_key is None:
        return
    try:
        other = loaders.saved_fit(str(fits.fit_store().root), other_key)
    except BhmError as exc:
        st.error(str(exc))
        return
    labels = (f"current ({current.key[:8]})", f"other ({other_key[:8]})")
    left, right = st.columns([1.2, 1])
    left.plotly_chart(
        fit_charts.losses_compare_figure({labels[0]: current.result.losses, labels[1]: other.losses}),
        width="stretch",
        config={"displayModeBar": False},
        key="fit.compare_losses",
    )
    sub = loaders.fit_cube(cube, current.result.store_ids)
    seen = fit_results.seen_features(sub.fingerprint, sub)
    right.dataframe(effects_side_by_side(current, other, other_key, labels, seen), hide_index=True, height=300)


def effects_side_by_side(current, other, other_key: str, labels, seen: tuple) -> pd.DataFrame:
    """Median multiplicative effects of two fits (same references for both)."""
    if tuple(other.feature_names) != tuple(current.result.feature_names):
        return pd.DataFrame({"Effect (×)": ["(the fits have different features)"]})
    a = summary_table(fit_results.effect_tables(current.key, seen, current.result)["global"])
    b = summary_table(fit_results.effect_tables(other_key, seen, other)["global"])
    merged = a[["id", "effect", "median"]].merge(b[["id", "median"]], on="id", how="outer", sort=False)
    merged = merged.drop(columns="id")  # effects are matched by id; the labels are only shown
    merged.columns = ["Effect (×)", labels[0], labels[1]]
    return merged.round(3)


def saved_keys() -> list[str]:
    try:
        return fits.fit_store().list()["key"].tolist()
    except OSError:
        return []
