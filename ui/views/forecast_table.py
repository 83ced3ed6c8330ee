"""The Forecast page's table and downloads: readable column names with their units, rounded
values, the interval levels named, every fitted store in the CSV (not only those shown), and a
Kaggle submission when the calendar ahead carries test.csv's Ids. Every CSV goes through
bhm_core.csvsafe (cells that would start a spreadsheet formula are escaped)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bhm_core.csvsafe import to_csv
from bhm_core.errors import BhmError
from bhm_core.forecast.submission import has_ids, submission
from ui.charts import style
from ui.session import fit_results

SOURCE_WORDS = {
    "data": "recorded",
    "calendar": "planned (calendar)",
    "inferred": "inferred",
    "estimated": "estimated",
    "default": "default",
}


def _unit(kind: str) -> str:
    unit = style.CURRENCY_KINDS.get(kind)
    return f" ({unit})" if unit else ""


def readable(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per store-day, named for people: sales rounded to whole units."""
    u = _unit(kind)
    columns = {
        "store": "Store",
        "date": "Date",
        "y": f"Actual sales{u}",
        "point": f"Forecast mean{u}",
        "median": f"Forecast median{u}",
        "point_rmspe": f"Point for RMSPE{u}",
        "lo_50": f"50 % interval, low{u}",
        "hi_50": f"50 % interval, high{u}",
        "lo_90": f"90 % interval, low{u}",
        "hi_90": f"90 % interval, high{u}",
        "open": "Open",
        "promo": "Promo",
        "state_holiday": "State holiday",
        "expected_closed": "Expected closed",
        "source": "Calendar from",
    }
    out = frame[[c for c in columns if c in frame.columns]].rename(columns=columns)
    money = [name for c, name in columns.items() if c in frame.columns and c in ("y", "point", "median", "point_rmspe")]
    money += [c for c in out.columns if "interval" in c]
    out[money] = out[money].round(0)
    if "Calendar from" in out:
        out["Calendar from"] = out["Calendar from"].map(SOURCE_WORDS).fillna(out["Calendar from"])
    out["Date"] = pd.to_datetime(out["Date"]).dt.date
    return out


def readable_total(total: pd.DataFrame, kind: str) -> pd.DataFrame:
    u = _unit(kind)
    names = {"date": "Date", "y": f"Actual total{u}", "point": f"Forecast mean{u}", "median": f"Forecast median{u}"}
    for level in (50, 80, 90, 95):
        names[f"lo_{level}"] = f"{level} % interval, low{u}"
        names[f"hi_{level}"] = f"{level} % interval, high{u}"
    out = total[[c for c in names if c in total.columns]].rename(columns=names)
    out[out.columns[1:]] = out[out.columns[1:]].round(0)
    out["Date"] = pd.to_datetime(out["Date"]).dt.date
    return out


def table_tab(fit, sub, request: dict, shown: pd.DataFrame | None, kind: str) -> None:
    ids = [int(i) for i in fit.result.store_ids]
    row = st.container(horizontal=True)

    def every_store() -> str:  # drawn when the button is pressed, for every fitted store
        frame = fit_results.store_forecast(
            fit.key,
            tuple(ids),
            request["first"],
            request["last"],
            request["plan_key"],
            request["n_samples"],
            fit.result,
            sub,
            request["plan"],
        )
        return to_csv(readable(frame, kind))

    row.download_button(
        f"Download all {len(ids)} fitted stores as CSV",
        every_store,
        "forecast_all_stores.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="fc.csv_all",
        help="The whole window (history and horizon) of every store of the fit, not only those shown",
    )
    if shown is not None and not shown.empty:
        row.download_button(
            "Download what is shown as CSV",
            to_csv(readable(shown, kind)),
            "forecast.csv",
            "text/csv",
            on_click="ignore",
            icon=":material/download:",
            key="fc.csv",
        )
    _submission(fit, sub, request, row)
    if shown is None or shown.empty:
        st.caption("Nothing to list: choose stores above.")
        return
    st.dataframe(readable(shown, kind), hide_index=True, height=420)
    st.caption(
        "Mean and median of the posterior predictive draws; the point for RMSPE minimises the expected "
        "squared relative error (what Kaggle scores). 'Calendar from' says where a day's promo and "
        "holidays came from."
    )


def _submission(fit, sub, request: dict, where) -> None:
    plan = request["plan"].calendar
    if not has_ids(plan):
        return

    def build() -> str:
        try:
            frame, _ = submission(fit.result, sub, plan, n_samples=request["n_samples"])
        except BhmError as exc:
            return f"error\n{exc}\n"
        return to_csv(frame)

    stores = plan.extra["Store"].to_numpy()
    fitted = pd.Series(stores).isin([int(i) for i in fit.result.store_ids])
    if not fitted.all():
        st.caption(
            f"The Kaggle submission covers the {int(fitted.sum()):,} of the calendar's {len(stores):,} Ids "
            "whose store is in this fit; fit the others for a complete one."
        )
    where.download_button(
        "Kaggle submission (Id,Sales)",
        build,
        "submission.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/emoji_events:",
        key="fc.submission",
        help="One row per Id of the calendar's test.csv for the fitted stores: the point that minimises "
        "the expected RMSPE, 0 on days the calendar says a store is closed",
    )
