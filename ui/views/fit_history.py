"""Saved fits of the data in use (from their records alone): a table to reopen, relabel, compare,
download or delete from. Fits made on other data are never listed (ui.session.fits.saved_fits)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.artifacts.records import MAX_LABEL
from bhm_core.errors import BhmError
from bhm_core.forecast.effects import summary_table
from bhm_core.model.config import Priors
from ui.charts import fit as fit_charts
from ui.session import fit_results, fits, in_use, loaders, state
from ui.views import prior_editor, svi_settings


def _priors_text(saved: dict) -> str:
    reference = Priors().to_dict()
    changed = [name for name, value in saved.items() if reference.get(name) != value]
    return "reference" if not changed else "changed: " + ", ".join(changed)


def _in_use(key: str, current_key: str | None, pointer: str | None) -> str:
    if key == current_key:
        return "this session"
    if in_use.used_elsewhere(key):
        return "another session"
    return "store's current" if key == pointer else ""


def shown_label(label: str) -> str:
    """A label without the name of the data in use in front: every fit listed is of these data."""
    prefix = f"{state.current_source().label} · "
    return label[len(prefix) :] if label.startswith(prefix) and len(label) > len(prefix) else label


def history_frame(cube, current_key: str | None) -> pd.DataFrame:
    """One row per saved fit of these data, from the records alone; stale ones say so. "Label" as
    shown, "Full label" as saved."""
    pointer = fits.fit_store().current_key()
    rows = []
    for item in fits.saved_fits(cube).itertuples():
        batch = item.batch_size
        rows.append(
            {
                "Current": item.key == current_key,
                "Label": shown_label(str(item.label)),
                "Full label": item.label,
                "Created": item.created,
                "Usable": "other versions" if item.stale else "yes",
                "In use": _in_use(item.key, current_key, pointer),
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


def table(cube, current) -> pd.DataFrame:
    """The saved fits of these data as a selectable table with actions for the selected one;
    returns the table (keys and labels, for the comparison)."""
    frame = history_frame(cube, current.key if current else None)
    if frame.empty:
        st.caption("No saved fits of these data yet: fits made on other data are not listed.")
        return frame
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        height=min(400, 38 + 35 * len(frame)),
        key=f"w.fit_history.{hash(tuple(frame['Key']))}",
        column_order=[c for c in frame.columns if c != "Full label"],
        column_config={
            "Current": st.column_config.CheckboxColumn("Current", width="small"),
            "Label": st.column_config.TextColumn(width="large"),
            "In use": st.column_config.TextColumn(width="medium"),
            "Final loss": st.column_config.NumberColumn(format="%.1f"),
            "Seconds": st.column_config.NumberColumn(format="%.1f"),
            "Learning rate": st.column_config.NumberColumn(format="%.4g"),
            "Key": st.column_config.TextColumn(width="small"),
        },
    )
    rows = event.selection.rows
    if rows:
        chosen = frame.iloc[rows[0]]
        actions(chosen["Key"], chosen["Full label"], chosen["Usable"] == "yes")
    else:
        st.caption(
            "Only fits made on the data in use are listed. Select a row to reopen, relabel, download or delete it."
        )
    return frame


def actions(key: str, label: str, usable: bool) -> None:
    row = st.container(horizontal=True)
    row.button(
        "Reopen (make current)",
        icon=":material/open_in_new:",
        on_click=_reopen,
        args=(key,),
        disabled=not usable,
        key="fit.reopen",
        help=None if usable else "Made with other library versions: fit again instead",
    )
    try:
        data = fits.download(key)
    except BhmError as exc:
        data = None
        st.error(f"Fit {key[:12]} cannot be downloaded: {exc}.")
    row.download_button(
        "Download (zip)",
        data=data if data is not None else b"",
        disabled=data is None,
        file_name=f"fit-{key}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/download:",
        key="fit.download",
    )
    refusal = fits.delete_refusal(key)
    row.button(
        "Delete…",
        icon=":material/delete:",
        on_click=_ask_delete,
        args=(key,),
        disabled=refusal is not None,
        key="fit.delete_ask",
        help=f"Cannot be deleted: {refusal}" if refusal else "Asks for a confirmation first",
    )
    _label_editor(key, label)
    if st.session_state.get(state.FIT_DELETE) == key and refusal is None:
        _confirm_delete(key, label)


def _label_editor(key: str, label: str) -> None:
    widget = f"fit.label.{key}"
    with st.form(f"fit.relabel.{key}", border=False, enter_to_submit=True):
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        text = left.text_input("Label", label, key=widget, max_chars=MAX_LABEL)
        saved = right.form_submit_button("Save label", icon=":material/edit:")
    if saved and text != label:
        problem = fits.relabel(key, text)
        if problem:
            st.error(f"The label was not changed: {problem}.")
        else:
            st.toast("Label saved.", icon=":material/check:")
            st.rerun()


def _confirm_delete(key: str, label: str) -> None:
    with st.container(border=True):
        st.warning(f"Delete the saved fit **{shown_label(label)}** (`{key[:12]}`) for good? This cannot be undone.")
        row = st.container(horizontal=True)
        row.button("Delete for good", type="primary", on_click=fits.delete, args=(key,), key="fit.delete")
        row.button("Keep it", on_click=_keep, key="fit.delete_keep")


def _ask_delete(key: str) -> None:
    st.session_state[state.FIT_DELETE] = key


def _keep() -> None:
    st.session_state.pop(state.FIT_DELETE, None)


def compare(cube, current, saved: pd.DataFrame) -> None:
    """Loss curves and effect medians of the current fit next to another saved fit of these data."""
    names = dict(zip(saved["Key"], saved["Label"])) if not saved.empty else {}
    others = [k for k in names if current is None or k != current.key]
    if current is None or not others:
        st.caption("Compare needs a current fit and another saved fit.")
        return
    other_key = st.selectbox(
        "Compare the current fit with",
        others,
        index=None,
        key="fit.compare",
        format_func=lambda k: f"{names[k]} ({k[:8]})",
        placeholder="Choose a saved fit of these data",
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
    """Keys of the saved fits made on the data in use (none when those cannot be loaded)."""
    try:
        cube = loaders.load_cube(state.current_source())
        return fits.saved_fits(cube)["key"].tolist()
    except (OSError, BhmError):
        return []
