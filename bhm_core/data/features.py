"""The feature-group registry: every group of the design declared once.

A group declares its name, its encoder (encoders.py: covariates -> labels and slots), whether it is
on by default and in the published reference model, its default prior, its title and help text (the
dashboard's prior editor and Effects page read them), and how its effects are read as contrasts.
`FeatureSpec` (which groups are on), `model.config.Priors` (one prior per group) and the prior
editor are all built from this registry, so adding a group is one entry here plus its encoder.

Feature columns follow the registry's order, then each group's labels; the weekday group is always
on: its seven dummies are the model's intercept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass

import numpy as np

from bhm_core.data import encoders
from bhm_core.data.covariates import Covariates, Design
from bhm_core.errors import ConfigError

MAX_YEARLY_HARMONICS = 10
DEFAULT_PRIOR = (0.0, 1.0, 2.0)  # (mu_loc, mu_scale, sigma_scale): the design notes' reference values


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    encode: Callable  # (Covariates, setting) -> encoders.GroupEncoding
    title: str
    meaning: str  # what exp(theta) of one of its features means
    help: str
    default: bool | int = True  # its FeatureSpec value unless set (an int: the group's size, 0 = off)
    reference: bool = False  # part of the published reference model
    # Its values need the days up to the cube's origin, so a fit must not stop before it.
    origin_dependent: bool = False
    prior: tuple = DEFAULT_PRIOR
    # How the Effects page reads its coefficients: "reference" (each level against the first level
    # the data saw: the weekdays, which carry the level), "first" (against the group's first level:
    # holiday levels against no holiday), "average" (one-hot levels that share the level with the
    # weekdays: against their average), "each" (a feature per unit of its value).
    contrast: str = "each"
    effect_label: str = ""  # for a one-feature "each" group: the label of its effect
    spec_field: str = ""  # its FeatureSpec field when that is not its name

    @property
    def setting_name(self) -> str:
        return self.spec_field or self.name


GROUP_LIST = (
    FeatureGroup(
        "weekday",
        encoders.weekday,
        "Weekday",
        "sales level exp(θ)",
        "The seven weekday coefficients are the model's intercept: exp(θ) is a store's typical daily "
        "sales on that weekday when nothing else applies. The reference prior N(0, 1) centres that on "
        "1 €/day; the data then have to carry the level. Use *Centre on the data* for a prior that "
        "starts near the observed sales.",
        reference=True,
        contrast="reference",
    ),
    FeatureGroup(
        "promo",
        encoders.promo,
        "Promo",
        "multiplier on promo days",
        "How much a promo day changes sales: exp(θ) = 1.3 means +30 %.",
        reference=True,
        effect_label="Promo day",
    ),
    FeatureGroup(
        "state_holiday",
        encoders.state_holiday,
        "State holidays",
        "multiplier per holiday level",
        "One coefficient per level (none, public, Easter, Christmas); with the weekday level, the "
        "difference between levels is the holiday effect.",
        reference=True,
        contrast="first",
    ),
    FeatureGroup(
        "school_holiday",
        encoders.school_holiday,
        "School holidays",
        "multiplier on school holidays",
        "How much a school holiday changes sales.",
        reference=True,
        effect_label="School holiday",
    ),
    FeatureGroup(
        "promo2",
        encoders.promo2,
        "Promo2 (continuing promotion)",
        "multiplier for Promo2 stores",
        "Stores taking part in the continuing Promo2 campaign.",
        reference=True,
        effect_label="Promo2 store",
    ),
    FeatureGroup(
        "store_variant",
        encoders.store_variant,
        "Store type × assortment",
        "multiplier per variant",
        "One coefficient per combination of store type and assortment; shares the level with the weekday coefficients.",
        reference=True,
        contrast="average",
    ),
    FeatureGroup(
        "promo_weekday",
        encoders.promo_weekday,
        "Promo × weekday",
        "extra promo multiplier on that weekday",
        "How much more (or less) a promo lifts sales on each weekday, on top of the promo effect.",
    ),
    FeatureGroup(
        "day_of_month",
        encoders.day_of_month_group,
        "Day of month",
        "multiplier on that day of the month",
        "Pay-day patterns: one coefficient per day of the month, against their average.",
        contrast="average",
    ),
    FeatureGroup(
        "month",
        encoders.month,
        "Month",
        "multiplier in that month",
        "One coefficient per calendar month, against their average.",
        default=False,
        contrast="average",
    ),
    FeatureGroup(
        "holiday_window",
        encoders.holiday_window,
        "Around holidays",
        "multiplier on that day",
        f"The {encoders.HOLIDAY_WINDOW_DAYS} days before and after a state holiday, each with its own "
        "effect (shopping ahead of a closed day, the quiet day after).",
    ),
    FeatureGroup(
        "promo2_active",
        encoders.promo2_active,
        "Promo2 active",
        "multiplier in a Promo2 round's months",
        "The months in which a store's continuing Promo2 coupon round runs.",
    ),
    FeatureGroup(
        "trend",
        encoders.trend,
        "Trend (per year)",
        "multiplier per year",
        "A per-store linear trend in log sales, counted from the last training day.",
    ),
    FeatureGroup(
        "promo_window",
        encoders.promo_window,
        "Around promo runs",
        "multiplier on that day",
        "Non-promo days right after and before a promo run.",
        default=False,
    ),
    FeatureGroup(
        "christmas",
        encoders.christmas,
        "Christmas and New Year",
        "multiplier on that day",
        "The last shopping days before Christmas Eve (counted in shopping days, not dates), Christmas "
        "Eve, the holidays, the days between the years, New Year's Eve and the first days of January.",
    ),
    FeatureGroup(
        "recent_level",
        encoders.recent_level,
        "Recent level",
        "multiplier on the store's recent level",
        f"A level shift over the last {encoders.RECENT_LEVEL_DAYS} days before the origin, carried into "
        "the forecast: the store's current level.",
        origin_dependent=True,
    ),
    FeatureGroup(
        "trend_changes",
        encoders.trend_changes,
        "Trend changes",
        "multiplier per year after the change",
        "Changes of the trend one year, six and three months before the origin.",
        default=False,
        origin_dependent=True,
    ),
    FeatureGroup(
        "closure_window",
        encoders.closure_window,
        "Around closures",
        "multiplier on that day",
        f"The {encoders.CLOSURE_WINDOW_DAYS} days before and after a closure of at least "
        f"{encoders.CLOSURE_MIN_DAYS} days (refurbishments): reopening spikes, the quiet day before.",
    ),
    FeatureGroup(
        "competition",
        encoders.competition,
        "Competition",
        "multiplier once a competitor opened",
        "From the month a competitor opened nearby, where that falls inside the data.",
        effect_label="Competitor opened",
    ),
    FeatureGroup(
        "school_weekday",
        encoders.school_weekday,
        "School holiday × weekday",
        "extra school-holiday multiplier on that weekday",
        "How the school-holiday effect differs by weekday.",
        default=False,
    ),
    FeatureGroup(
        "season",
        encoders.season,
        "Season profile",
        "multiplier per unit of the store's profile",
        "Each store's own yearly profile of log sales by week of the year, built from its history "
        "before the origin; 1 means the profile holds as it is.",
        origin_dependent=True,
        effect_label="Season profile",
    ),
    FeatureGroup(
        "carnival",
        encoders.carnival,
        "Carnival",
        "multiplier on that day",
        "Weiberfastnacht, Rosenmontag and Shrove Tuesday, from the date of Easter.",
    ),
    FeatureGroup(
        "easter",
        encoders.easter,
        "Easter week",
        "multiplier on that day",
        "Each day from Holy Monday to Easter Tuesday, from the date of Easter.",
    ),
    FeatureGroup(
        "yearly",
        encoders.yearly,
        "Yearly seasonality",
        "multiplier at a harmonic's peak",
        "Sine and cosine terms of the day of the year; exp(θ) is the swing at the peak.",
        default=0,
        spec_field="yearly_harmonics",
    ),
)
GROUPS = {g.name: g for g in GROUP_LIST}
FEATURE_GROUPS = tuple(GROUPS)
REFERENCE_GROUPS = tuple(g.name for g in GROUP_LIST if g.reference and g.name != "weekday")
ORIGIN_GROUPS = tuple(g.name for g in GROUP_LIST if g.origin_dependent)
_SWITCHABLE = tuple(g for g in GROUP_LIST if g.name != "weekday")  # the weekday group is the intercept


def group_title(group: str) -> str:
    """A feature group's display title (a plain one for a name the registry does not know)."""
    return GROUPS[group].title if group in GROUPS else group.replace("_", " ").capitalize()


def _reference(cls):
    """The published reference model's 23 features (weekday, promo, state and school holiday,
    promo2, store variant) and nothing else."""
    return cls(**{g.setting_name: (g.reference if isinstance(g.default, bool) else 0) for g in _SWITCHABLE})


def _origin_groups(self) -> tuple:
    """The groups on here whose values depend on the origin."""
    return tuple(g for g in ORIGIN_GROUPS if getattr(self, GROUPS[g].setting_name))


def _setting(self, group: str):
    """The group's value in this spec: True/False, or its size; the weekday group is always on."""
    return True if group == "weekday" else getattr(self, GROUPS[group].setting_name)


def _check(self):
    # A string such as "no" from a form or a config file is truthy and would switch a group on.
    for g in _SWITCHABLE:
        value = getattr(self, g.setting_name)
        if isinstance(g.default, bool):
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(
                    f"FeatureSpec.{g.setting_name} must be True or False, got {value!r}",
                    key=f"features.{g.setting_name}",
                    value=value,
                    allowed="true or false",
                )
            object.__setattr__(self, g.setting_name, bool(value))  # np.bool_ -> bool: one repr per cache key
        else:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or not (0 <= value <= MAX_YEARLY_HARMONICS)
            ):
                raise ConfigError(
                    f"FeatureSpec.{g.setting_name} must be an integer in 0..{MAX_YEARLY_HARMONICS}, got {value!r}",
                    key=f"features.{g.setting_name}",
                    value=value,
                    allowed=f"an integer in 0..{MAX_YEARLY_HARMONICS}",
                )
            object.__setattr__(self, g.setting_name, int(value))


FeatureSpec = make_dataclass(
    "FeatureSpec",
    [(g.setting_name, type(g.default), field(default=g.default)) for g in _SWITCHABLE],
    frozen=True,
    namespace={
        "reference": classmethod(_reference),
        "origin_groups": _origin_groups,
        "setting": _setting,
        "__post_init__": _check,
        "__doc__": "Which feature groups the model sees: one field per group of the registry (True/False, "
        "or a size for yearly_harmonics). The weekday dummies are always on.",
    },
)
FeatureSpec.__module__ = __name__


def encode(spec: FeatureSpec, cov: Covariates) -> Design:
    """Encode covariates into slots; feature order is the registry's, then each group's labels."""
    n_stores, n_days = cov.promo.shape
    names, groups, slot_index, slot_value = [], [], [], []
    for group in GROUP_LIST:
        setting = spec.setting(group.name)
        if not setting:
            continue
        start = len(names)
        encoding = group.encode(cov, setting)
        names.extend(encoding.labels)
        groups.extend([group.name] * len(encoding.labels))
        for index, value in encoding.slots:
            slot_index.append(np.broadcast_to(start + np.asarray(index), (n_stores, n_days)).astype(np.int16))
            slot_value.append(np.broadcast_to(value, (n_stores, n_days)).astype(np.float32))
    return Design(
        index=np.stack(slot_index, axis=-1),
        value=np.stack(slot_value, axis=-1),
        names=tuple(names),
        groups=tuple(groups),
    )


def spec_fields() -> tuple:
    return tuple(f.name for f in fields(FeatureSpec))
