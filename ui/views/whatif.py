"""The Forecast page's what-ifs.

Promo days: the user plans promo on (or off) for a date range, some weekdays and some stores, over
the calendar ahead the forecast already follows; the plan and the scenario are drawn on the same
posterior draws (bhm_core.forecast.whatif.uplift) and shown side by side, with the uplift in sales
and percent and its 90 % interval, per store and in total.

Another fit: the current fit's forecast against another saved fit of the same stores (say before
and after widening the weekday prior), with their difference and whether it is larger than the
forecasts' own uncertainty (whatif.compare_fits).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import streamlit as st

from bhm_core.csvsafe import to_csv
from bhm_core.errors import BhmError, ConfigError
from bhm_core.forecast import whatif
from bhm_core.forecast.sampling import Scenario
from ui.charts import style
from ui.charts import whatif as whatif_charts
from ui.session import fit_results, fits, loaders, state
from ui.views import fit_history, job_progress, labels

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_PANELS = 6


def _day(value) -> dt.date:
    return dt.date.fromisoformat(str(np.datetime64(value, "D")))


def _money(kind: str) -> str:
    unit = style.CURRENCY_KINDS.get(kind)
    return f" ({unit})" if unit else ""


def promo_tab(fit, sub, request: dict, kind: str) -> None:
    if not request["horizon"]:
        st.info("Choose a horizon above: a promo plan is about the days after the data.", icon=":material/event:")
        return
    ids = [int(i) for i in fit.result.store_ids]
    first, last = request["end"] + np.timedelta64(1, "D"), np.datetime64(request["last"], "D")
    top = st.columns([2.2, 1.6, 1.6, 1.1], vertical_alignment="bottom")
    stores = top[0].multiselect("Stores of the plan", ids, default=ids, key=f"w.wi.stores.{fit.key}")
    days = top[1].date_input(
        "Days", (_day(first), _day(last)), min_value=_day(first), max_value=_day(last), key=f"w.wi.days.{first}.{last}"
    )
    weekdays = top[2].multiselect("Weekdays", WEEKDAYS, default=WEEKDAYS[:5], key="w.wi.weekdays")
    promo = top[3].segmented_control("Promo", ("on", "off"), default="on", required=True, key="w.wi.promo")
    if len(days) != 2:
        st.caption("Choose the last day of the range too.")
        return
    try:
        base = request["plan"].calendar
        chosen = [WEEKDAYS.index(d) for d in weekdays]
        plan = whatif.promo_plan(base, stores, days[0], days[1], chosen, int(promo == "on"))
    except ConfigError as exc:
        st.error(labels.message(exc))
        return
    scenario = Scenario(calendar=plan)
    keys = (request["plan_key"], whatif.scenario_key(scenario))
    table, daily = fit_results.uplift(
        fit.key,
        tuple(ids),
        str(first),
        str(last),
        keys,
        request["n_samples"],
        fit.result,
        sub,
        request["plan"],
        scenario,
    )
    _uplift_summary(table, kind, promo, stores, days, weekdays)
    shown = [s for s in request["stores"] if s in stores][:MAX_PANELS] or stores[:MAX_PANELS]
    what = f"Promo {promo} (what-if)"
    figure = whatif_charts.promo_figure(daily, shown, style.sales_axis_label(kind), what)
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="wi.promo")
    readable = _uplift_table(table, kind)
    st.dataframe(readable, hide_index=True)
    st.download_button(
        "Download the uplift as CSV",
        to_csv(readable),
        "promo_uplift.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="wi.csv",
    )


def _uplift_summary(table: pd.DataFrame, kind: str, promo: str, stores, days, weekdays) -> None:
    total = table.set_index("store").loc[whatif.TOTAL]
    unit = style.CURRENCY_KINDS.get(kind, "")
    cols = st.columns(3)
    cols[0].metric("Plan, all fitted stores", f"{total['plan']:,.0f} {unit}", border=True)
    cols[1].metric(
        "Uplift",
        f"{total['uplift']:+,.0f} {unit}",
        border=True,
        help="What-if minus plan, summed over the days and stores, draw by draw on the same posterior draws",
    )
    cols[2].metric("Uplift in %", f"{total['uplift_pct']:+.1f} %", border=True)
    st.caption(
        f"Promo {promo} on {', '.join(weekdays)} from {days[0]:%d %b} to {days[1]:%d %b %Y} for "
        f"{len(stores)} store(s); 90 % interval of the uplift: {total['uplift_lo_90']:+,.0f} to "
        f"{total['uplift_hi_90']:+,.0f} {unit} ({total['uplift_pct_lo_90']:+.1f} % to "
        f"{total['uplift_pct_hi_90']:+.1f} %). Both sides use the same posterior draws, so the interval "
        "is the uncertainty about the promo effect, not day-to-day noise."
    )


def _uplift_table(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    u = _money(kind)
    out = pd.DataFrame(
        {
            "Store": table["store"].map(lambda s: "All fitted stores" if s == whatif.TOTAL else str(s)),
            f"Plan{u}": table["plan"].round(0),
            f"What-if{u}": table["scenario"].round(0),
            f"Uplift{u}": table["uplift"].round(0),
            f"Uplift 90 % interval, low{u}": table["uplift_lo_90"].round(0),
            f"Uplift 90 % interval, high{u}": table["uplift_hi_90"].round(0),
            "Uplift (%)": table["uplift_pct"].round(1),
            "Uplift 90 % interval, low (%)": table["uplift_pct_lo_90"].round(1),
            "Uplift 90 % interval, high (%)": table["uplift_pct_hi_90"].round(1),
        }
    )
    return pd.concat([out.iloc[-1:], out.iloc[:-1]], ignore_index=True)  # the total first


def _same_stores(fit) -> list[str]:
    """Saved fits other than the current one, of exactly its stores."""
    store = fits.fit_store()
    out = []
    for key in fit_history.saved_keys():
        if key == fit.key:
            continue
        try:
            if np.array_equal(store.store_ids(key), fit.result.store_ids):
                out.append(key)
        except (BhmError, OSError):
            continue
    return out


def _widen_weekday_and_fit(cube, store_ids) -> None:
    from ui.views import prior_editor, svi_settings

    weekday = prior_editor.current_priors().weekday
    for name in ("mu_scale", "sigma_scale"):
        st.session_state[f"{state.W_PRIOR}.weekday.{name}"] = 2.0 * float(getattr(weekday, name))
    fits.start(cube, store_ids, svi_settings.current_config(), prior_editor.current_priors())


def fits_tab(fit, sub, request: dict, kind: str) -> None:
    cube = loaders.current_cube()
    ids = [int(i) for i in fit.result.store_ids]
    others = _same_stores(fit)
    previous = st.session_state.get(state.PREVIOUS_FIT)
    left, right = st.columns([2, 1.4], vertical_alignment="bottom")
    other_key = left.selectbox(
        "Compare the current fit with the saved fit",
        others,
        index=others.index(previous) if previous in others else (0 if others else None),
        format_func=lambda k: f"{k[:12]}" + (" (the fit current before this one)" if k == previous else ""),
        key=f"w.wi.other.{fit.key}",
        placeholder="No other saved fit of these stores yet",
    )
    right.button(
        "Widen the weekday prior ×2 and fit again",
        on_click=_widen_weekday_and_fit,
        args=(cube, ids),
        disabled=cube is None or fits.job() is not None,
        icon=":material/open_in_full:",
        help="Doubles the weekday group's mean uncertainty and store spread in the priors, fits these stores "
        "in the background; the new fit becomes current and is compared with this one",
        key="wi.widen",
    )
    job_progress.progress(fits.LIFECYCLE)
    if other_key is None:
        st.caption("Fit these stores with other priors (or press the button) to compare two fits here.")
        return
    if not request["horizon"]:
        st.info("Choose a horizon above: the comparison is about the days after the data.", icon=":material/event:")
        return
    try:
        other = loaders.saved_fit(str(fits.fit_store().root), other_key)
    except BhmError as exc:
        st.error(str(exc))
        return
    first = request["end"] + np.timedelta64(1, "D")
    table, daily = fit_results.fits_compared(
        (other_key, fit.key),
        tuple(ids),
        str(first),
        request["last"],
        request["plan_key"],
        request["n_samples"],
        other,
        fit.result,
        sub,
        request["plan"],
    )
    _compare_results(table, daily, request, kind, (f"fit {other_key[:8]}", f"current fit {fit.key[:8]}"))


def _compare_results(table, daily, request: dict, kind: str, names: tuple) -> None:
    total = table.set_index("store").loc[whatif.TOTAL]
    larger = int(table.loc[table["store"] != whatif.TOTAL, "larger_than_uncertainty"].sum())
    st.markdown(
        f"**Over the {request['horizon']} days ahead**, the current fit forecasts {total['difference']:+,.0f} "
        f"({total['difference_pct']:+.1f} %) for all fitted stores together, which is "
        f"{'more' if total['larger_than_uncertainty'] else 'less'} than the forecasts' own uncertainty; for "
        f"{larger} of {len(table) - 1} stores the difference is larger than it."
    )
    stores = list(request["stores"])[:MAX_PANELS]
    figure = whatif_charts.fits_figure(daily, stores, style.sales_axis_label(kind), names)
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="wi.fits")
    u = _money(kind)
    readable = pd.DataFrame(
        {
            "Store": table["store"].map(lambda s: "All fitted stores" if s == whatif.TOTAL else str(s)),
            f"{names[0]}{u}": table["mean_a"].round(0),
            f"{names[1]}{u}": table["mean_b"].round(0),
            f"Difference{u}": table["difference"].round(0),
            "Difference (%)": table["difference_pct"].round(1),
            f"{names[0]}: 90 % interval, low{u}": table["lo_90_a"].round(0),
            f"{names[0]}: 90 % interval, high{u}": table["hi_90_a"].round(0),
            "Larger than the forecast's uncertainty": table["larger_than_uncertainty"].map({True: "yes", False: "no"}),
        }
    )
    readable = pd.concat([readable.iloc[-1:], readable.iloc[:-1]], ignore_index=True)
    st.dataframe(readable, hide_index=True)
    st.caption(
        "Sales over the days ahead under each fit (means of the predictive draws, same seed). A difference "
        "is larger than the forecast's uncertainty when the current fit's mean falls outside the other "
        "fit's 90 % interval."
    )
    st.download_button(
        "Download the comparison as CSV",
        to_csv(readable),
        "fit_comparison.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="wi.fits_csv",
    )
