"""Built-in synthetic demo data: a seeded retail chain in the Kaggle Rossmann layout.

Sales are drawn from the model itself (Gamma-Poisson, per-store coefficients around group means),
over a realistic calendar: a weekday pattern, Sunday closures for most stores, Rossmann's alternating
promo weeks, German-style state holidays that differ by state, school holidays, store types and
assortments, a few stores closed for months (refurbishment: no rows at all) and a few that open late.
The true parameters come back with the data so tests can check that a fit recovers them.

The generator states the reference model on its own (theta = mu + sigma z, a log-linear mean, a
Gamma-Poisson draw) rather than calling bhm_core.model: recovery tests then check the model against
data it did not generate with its own code, and the Data page can draw the demo without JAX.

Store size lives in the store-variant coefficients (large per-store spread), the weekday shape in the
weekday coefficients (small spread): in the model a store-level feature acts as a per-store intercept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bhm_core.data.calendar import day_of_year, easter_sunday, weekday_of, year_of
from bhm_core.data.covariates import STATE_HOLIDAY_LEVELS
from bhm_core.data.cube import build_cube
from bhm_core.data.features import FeatureSpec
from bhm_core.data.sources import Dataset, DemoSource
from bhm_core.errors import ConfigError

FIRST_DATE = np.datetime64("2013-01-01", "D")
N_STATES = 6
# Hyper-parameters of the chain (log scale): (group mean, per-store spread).
WEEKDAY_MU = np.array([8.80, 8.62, 8.58, 8.55, 8.66, 8.62, 8.20])
WEEKDAY_SIGMA = np.full(7, 0.08)
PROMO = (0.38, 0.10)
STATE_HOLIDAY = (np.array([0.0, 0.10, -0.15, 0.25]), np.array([0.02, 0.05, 0.05, 0.05]))
SCHOOL_HOLIDAY = (0.04, 0.03)
PROMO2 = (-0.06, 0.05)
VARIANT_SIGMA = 0.35
R_MU, R_SIGMA = 4.3, 0.8
STORE_TYPE_P = {"a": 0.54, "b": 0.02, "c": 0.13, "d": 0.31}
KAGGLE_TRAIN_COLUMNS = (
    "Store",
    "DayOfWeek",
    "Date",
    "Sales",
    "Customers",
    "Open",
    "Promo",
    "StateHoliday",
    "SchoolHoliday",
)
KAGGLE_STORE_COLUMNS = (
    "Store",
    "StoreType",
    "Assortment",
    "CompetitionDistance",
    "CompetitionOpenSinceMonth",
    "CompetitionOpenSinceYear",
    "Promo2",
    "Promo2SinceWeek",
    "Promo2SinceYear",
    "PromoInterval",
)


def holiday_calendar(dates: np.ndarray, state: np.ndarray) -> np.ndarray:
    """(S, T) state-holiday codes into STATE_HOLIDAY_LEVELS."""
    codes = np.zeros((len(state), len(dates)), np.int8)
    day = {d: i for i, d in enumerate(dates)}
    a, b, c = (STATE_HOLIDAY_LEVELS.index(x) for x in "abc")
    years = range(int(str(dates[0])[:4]), int(str(dates[-1])[:4]) + 1)
    for year in years:
        easter = easter_sunday(year)
        fixed = {f"{year}-01-01": a, f"{year}-05-01": a, f"{year}-10-03": a, f"{year}-12-25": c, f"{year}-12-26": c}
        national = {np.datetime64(k, "D"): v for k, v in fixed.items()}
        national.update({easter - 2: b, easter + 1: b, easter + 39: a, easter + 50: a})
        regional = {
            easter + 60: state < 3,
            np.datetime64(f"{year}-01-06", "D"): state == 3,
            np.datetime64(f"{year}-11-01", "D"): np.isin(state, (0, 1, 4)),
        }
        for when, code in national.items():
            if when in day:
                codes[:, day[when]] = code
        for when, where in regional.items():
            if when in day:
                codes[where, day[when]] = a
    return codes


def school_calendar(dates: np.ndarray, state: np.ndarray) -> np.ndarray:
    """(S, T) 0/1: summer (6 weeks, staggered by state), Easter, autumn and Christmas breaks."""
    doy, year = day_of_year(dates), year_of(dates)
    easter_doy = {y: int((easter_sunday(y) - np.datetime64(f"{y}-01-01", "D")).astype(int)) for y in np.unique(year)}
    e = np.array([easter_doy[y] for y in year])
    shift = 7 * state[:, None]
    summer = (doy[None, :] >= 180 + shift) & (doy[None, :] < 222 + shift)
    easter_break = np.abs(doy - e + 3) <= 7
    autumn = (doy[None, :] >= 290 + shift // 2) & (doy[None, :] < 300 + shift // 2)
    christmas = (doy >= 355) | (doy <= 5)
    return (summer | easter_break[None, :] | autumn | christmas[None, :]).astype(np.int8)


def _stores(rng, n_stores: int) -> pd.DataFrame:
    types = rng.choice(list(STORE_TYPE_P), size=n_stores, p=list(STORE_TYPE_P.values()))
    assortment = np.where(rng.random(n_stores) < 0.55, "a", "c")
    assortment = np.where((types == "b") & (rng.random(n_stores) < 0.5), "b", assortment)
    promo2 = (rng.random(n_stores) < 0.5).astype(np.int8)
    return pd.DataFrame(
        {
            "Store": np.arange(1, n_stores + 1),
            "StoreType": types,
            "Assortment": assortment,
            "CompetitionDistance": np.round(np.exp(rng.normal(7.5, 1.2, n_stores)), -1),
            "Promo2": promo2,
            "PromoInterval": np.where(promo2 == 1, "Jan,Apr,Jul,Oct", ""),
        }
    )


def _kaggle_store_columns(stores: pd.DataFrame, rng) -> pd.DataFrame:
    """Add store.csv's remaining Kaggle columns, blank where Kaggle leaves them blank, in its order.

    Takes its own generator: drawing from the main one would change every demo sale already pinned.
    """
    n = len(stores)
    has_since = rng.random(n) < 0.7  # Kaggle: about a third of the stores have no opening date
    promo2 = stores["Promo2"].to_numpy() == 1
    extra = {
        "CompetitionOpenSinceMonth": np.where(has_since, rng.integers(1, 13, n), np.nan),
        "CompetitionOpenSinceYear": np.where(has_since, rng.integers(2000, 2016, n), np.nan),
        "Promo2SinceWeek": np.where(promo2, rng.integers(1, 51, n), np.nan),
        "Promo2SinceYear": np.where(promo2, rng.integers(2009, 2016, n), np.nan),
    }
    # Nullable integers: written as Kaggle writes them, "9" or blank rather than "9.0" or "nan".
    extra = {k: pd.array(v, dtype="Float64").astype("Int64") for k, v in extra.items()}
    extra["CompetitionDistance"] = stores["CompetitionDistance"].astype("Int64")
    return stores.assign(**extra)[list(KAGGLE_STORE_COLUMNS)]


def _presence(rng, n_stores: int, n_days: int) -> np.ndarray:
    """(S, T) whether a row exists: a few refurbishment gaps and a few late openings."""
    present = np.ones((n_stores, n_days), bool)
    n_special = max(1, round(0.04 * n_stores))
    special = rng.choice(n_stores, size=min(n_stores, 2 * n_special), replace=False)
    for s in special[:n_special]:  # months-long refurbishment, like Rossmann's 180 stores in 2014
        length = int(rng.integers(90, 185))
        start = int(rng.integers(n_days // 4, max(n_days // 4 + 1, n_days - length - 30)))
        present[s, start : start + length] = False
    for s in special[n_special:]:  # opened late: short history
        present[s, : int(rng.integers(n_days // 3, 2 * n_days // 3))] = False
    return present


def true_parameters(rng, cube_names, variant_levels, n_stores):
    mu = {
        "weekday": WEEKDAY_MU,
        "promo": [PROMO[0]],
        "state_holiday": STATE_HOLIDAY[0],
        "school_holiday": [SCHOOL_HOLIDAY[0]],
        "promo2": [PROMO2[0]],
        "store_variant": rng.normal(0.0, 0.25, len(variant_levels)),
    }
    sigma = {
        "weekday": WEEKDAY_SIGMA,
        "promo": [PROMO[1]],
        "state_holiday": STATE_HOLIDAY[1],
        "school_holiday": [SCHOOL_HOLIDAY[1]],
        "promo2": [PROMO2[1]],
        "store_variant": np.full(len(variant_levels), VARIANT_SIGMA),
    }
    theta_mu = np.concatenate([np.asarray(mu[g], float) for g in mu])
    theta_sigma = np.concatenate([np.asarray(sigma[g], float) for g in sigma])
    z = rng.normal(size=(n_stores, len(theta_mu)))
    w = rng.normal(0.0, 0.1, n_stores)
    return {
        "feature_names": tuple(cube_names),
        "theta_mu": theta_mu,
        "theta_sigma": theta_sigma,
        "theta": theta_mu + theta_sigma * z,
        "r_mu": R_MU,
        "r_sigma": R_SIGMA,
        "r": R_MU + R_SIGMA * w,
    }


def generate_demo(source: DemoSource = DemoSource()) -> Dataset:
    """Deterministic for a given source (size and seed)."""
    if not 1 <= source.n_stores <= 100_000 or not 7 <= source.n_days <= 5_000:
        raise ConfigError(
            f"demo size must be 1..100000 stores and 7..5000 days, got {source.n_stores} stores x {source.n_days} days"
        )
    rng = np.random.default_rng(source.seed)
    n_stores, n_days = source.n_stores, source.n_days
    dates = FIRST_DATE + np.arange(n_days)
    weekday = weekday_of(dates)
    stores = _stores(rng, n_stores)
    state = rng.integers(0, N_STATES, n_stores)
    promo = np.broadcast_to((weekday < 5) & ((dates.astype(np.int64) + 3) // 7 % 2 == 0), (n_stores, n_days)).astype(
        np.int8
    )
    holiday = holiday_calendar(dates, state)
    school = school_calendar(dates, state)
    sunday_open = rng.random(n_stores) < 0.05
    open_ = ((weekday[None, :] < 6) | sunday_open[:, None]) & (holiday == 0)
    open_ |= (holiday > 0) & (rng.random((n_stores, 1)) < 0.05)
    open_ &= rng.random((n_stores, n_days)) > 0.004  # odd closures: strikes, inventory
    present = _presence(rng, n_stores, n_days)

    frame = pd.DataFrame(
        {
            "Store": np.repeat(stores["Store"].to_numpy(), n_days),
            "Date": np.tile(dates, n_stores),
            "Sales": 0.0,
            "Open": open_.ravel().astype(np.int8),
            "Promo": promo.ravel(),
            "StateHoliday": holiday.ravel(),
            "SchoolHoliday": school.ravel(),
        }
    )
    cube = build_cube(frame, stores, FeatureSpec.reference())  # the truth's parameterisation
    truth = true_parameters(rng, cube.feature_names, cube.covariates.variant_levels, n_stores)
    index, value = cube.design.index, cube.design.value
    eta = (np.take_along_axis(truth["theta"][:, None, :], index.astype(np.int64), axis=2) * value).sum(axis=2)
    mu = np.exp(eta)
    b = np.exp(-truth["r"])[:, None]
    sales = rng.poisson(rng.gamma(shape=mu * b, scale=1.0 / b))
    basket = 9.0 * np.exp(rng.normal(0.0, 0.1, n_stores))[:, None]
    customers = np.round(sales / basket * np.exp(rng.normal(0, 0.05, sales.shape)))
    frame["Sales"] = np.where(open_, sales, 0).ravel().astype(np.float64)
    frame["Customers"] = np.where(open_, customers, 0).ravel()
    frame = frame[present.ravel()].reset_index(drop=True)
    truth["store_ids"] = stores["Store"].to_numpy()
    stores = _kaggle_store_columns(stores, np.random.default_rng([source.seed, 1]))
    return Dataset(frame, stores, source.kind, source.label, truth)


def to_kaggle_csv(dataset: Dataset, folder) -> None:
    """Write a dataset as Kaggle's train.csv and store.csv (StateHoliday as '0'/'a'/'b'/'c')."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train = dataset.train.copy()
    train["DayOfWeek"] = weekday_of(train["Date"].to_numpy()) + 1
    train["Date"] = pd.to_datetime(train["Date"]).dt.strftime("%Y-%m-%d")
    train["StateHoliday"] = np.asarray(STATE_HOLIDAY_LEVELS)[train["StateHoliday"].to_numpy()]
    train["Sales"] = train["Sales"].round().astype(np.int64)
    # Kaggle writes whole numbers; a float column would come out as "775.0".
    train["Customers"] = train["Customers"].round().astype(np.int64) if "Customers" in train else 0
    train[list(KAGGLE_TRAIN_COLUMNS)].to_csv(folder / "train.csv", index=False)
    dataset.stores.to_csv(folder / "store.csv", index=False)
