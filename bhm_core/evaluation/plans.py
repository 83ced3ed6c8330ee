"""Evaluation runs as callers plan them: the content keys that name a run's result, and the cold
start with its hierarchy (a fit to reuse, or one to fit or load on the other stores first).

Keys name everything that decides a result, so a result computed once can be shown again to
anyone asking the same. `select` arguments take the sub-cube of some stores; the default is
`cube.select_stores`, and a caller with a cache of sub-cubes passes its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from bhm_core import artifacts
from bhm_core.artifacts import FitStore, content_key
from bhm_core.data.cells import stores_per_feature
from bhm_core.data.cube import SalesCube
from bhm_core.errors import BhmError
from bhm_core.evaluation.backtest import DEFAULT_HORIZON, Evaluation, EvaluationCancelled
from bhm_core.evaluation.coldstart import coldstart
from bhm_core.inference.coldstart import MIN_POOL_STORES
from bhm_core.inference.state import FitResult
from bhm_core.model.config import FitConfig, Priors

HIERARCHY_STAGE, NEW_STORES_STAGE = "hierarchy", "new_stores"


MIN_HIERARCHY_STORES = 20  # fewer stores tell the chain's spreads only roughly


class PoolingReport(NamedTuple):
    """What a hierarchy can lend new stores: how many stores it rests on, and which of the new
    stores' features fewer than MIN_POOL_STORES of them had (their effects then come from the new
    stores' own days, inference.coldstart.pooled_hyper)."""

    n_stores: int
    unseen: tuple  # feature names
    labels: tuple  # the same, readable

    @property
    def few_stores(self) -> bool:
        return self.n_stores < MIN_HIERARCHY_STORES

    @property
    def weak(self) -> bool:
        return self.few_stores or bool(self.unseen)

    def text(self) -> str:
        parts = []
        if self.few_stores:
            parts.append(
                f"The hierarchy rests on {self.n_stores} store{'s' if self.n_stores != 1 else ''}: too few "
                f"(under {MIN_HIERARCHY_STORES}) to tell reliably how much stores differ, which is what "
                "the new stores borrow."
            )
        if self.unseen:
            shown = ", ".join(self.labels[:8]) + (f" and {len(self.labels) - 8} more" if len(self.labels) > 8 else "")
            parts.append(
                f"Fewer than {MIN_POOL_STORES} of its stores had {shown}, which the new stores have: "
                "those effects come from the new stores' own days alone."
            )
        return " ".join(parts)


def pooling_report(cube: SalesCube, hierarchy_ids, new_ids, select: Callable | None = None) -> PoolingReport:
    """How well a hierarchy on `hierarchy_ids` pools for the stores `new_ids` of the same cube."""
    from bhm_core.forecast.effects import feature_label

    pick = _selector(cube, select)
    hierarchy = pick(cube, [int(i) for i in hierarchy_ids])
    new = pick(cube, sorted(int(i) for i in new_ids))
    lacking = (stores_per_feature(hierarchy) < MIN_POOL_STORES) & (stores_per_feature(new) > 0)
    names = tuple(np.asarray(cube.feature_names)[lacking].tolist())
    return PoolingReport(len(hierarchy.store_ids), names, tuple(feature_label(n) for n in names))


class HierarchyPlan(NamedTuple):
    reuse: FitResult | None  # a fit to use as the hierarchy as it is, or None: fit `stores`
    stores: list[int]  # the stores the hierarchy is (or will be) fitted on


def _selector(cube: SalesCube, select: Callable | None) -> Callable:
    return select or (lambda _cube, ids: _cube.select_stores(ids))


def fitted_on(cube: SalesCube, result: FitResult, select: Callable | None = None) -> bool:
    """Whether `result` was fitted on these data (its stores' part of this cube)."""
    try:
        return _selector(cube, select)(cube, result.store_ids).fingerprint == result.data_fingerprint
    except BhmError:  # stores this cube does not have
        return False


def hierarchy_plan(
    cube: SalesCube,
    new_ids,
    current: FitResult | None,
    picked,
    fallback_stores: int,
    select: Callable | None = None,
) -> HierarchyPlan:
    """Where the hierarchy of a cold start comes from.

    `current` is reused when it was fitted on these data and none of the new stores is in it
    (a new store must be new to the hierarchy). Otherwise the hierarchy is fitted on the picked
    stores without the new ones, or, when that leaves none, on the first `fallback_stores` other
    stores of the cube.
    """
    new = {int(i) for i in new_ids}
    if current is not None and not new & {int(i) for i in current.store_ids} and fitted_on(cube, current, select):
        return HierarchyPlan(current, [int(i) for i in current.store_ids])
    others = [int(i) for i in picked if int(i) not in new]
    if not others:
        others = [int(i) for i in cube.store_ids if int(i) not in new][:fallback_stores]
    return HierarchyPlan(None, others)


def hierarchy_key(
    cube: SalesCube,
    stores,
    config: FitConfig,
    priors: Priors,
    *,
    reuse_key: str | None = None,
    select: Callable | None = None,
) -> str:
    """The fit key of the hierarchy: the reused fit's own key, else that of a fit on `stores`."""
    if reuse_key is not None:
        return reuse_key
    sub = _selector(cube, select)(cube, [int(i) for i in stores])
    return artifacts.fit_key(sub.fingerprint, config, priors, sub.spec)


def backtest_key(
    cube: SalesCube, store_ids, cutoff, horizon: int, config: FitConfig, priors: Priors, n_samples: int
) -> str:
    return content_key(
        "backtest",
        data=cube.fingerprint,
        stores=[int(i) for i in store_ids],
        cutoff=str(cutoff),
        horizon=int(horizon),
        config=config,
        priors=priors,
        n_samples=int(n_samples),
    )


def coldstart_key(
    cube: SalesCube, new_ids, known_days: int, horizon: int, hierarchy: str, config: FitConfig, n_samples: int
) -> str:
    """hierarchy: the hierarchy's fit key (hierarchy_key), which stands for its data and priors."""
    return content_key(
        "coldstart",
        data=cube.fingerprint,
        new=sorted(int(i) for i in new_ids),
        known_days=int(known_days),
        horizon=int(horizon),
        hierarchy=hierarchy,
        config=config,
        n_samples=int(n_samples),
    )


def coldstart_with_hierarchy(
    cube: SalesCube,
    new_ids,
    known_days: int,
    horizon: int = DEFAULT_HORIZON,
    *,
    plan: HierarchyPlan,
    config: FitConfig,
    priors: Priors,
    fit_store: FitStore,
    n_samples: int = 500,
    label: str = "",
    select: Callable | None = None,
    on_stage: Callable[[str, int], None] | None = None,
    on_progress=None,
    should_stop=None,
) -> Evaluation:
    """A cold start of `new_ids` on the hierarchy of `plan`: the reused fit, or a fit on the
    plan's stores (loaded from `fit_store` when saved before, else fitted and saved there).

    on_stage(stage, steps) is called before each fit (HIERARCHY_STAGE, NEW_STORES_STAGE);
    on_progress and should_stop go to both fits. A cancelled hierarchy fit raises
    EvaluationCancelled before anything is scored.
    """
    stage = on_stage or (lambda _stage, _steps: None)
    hierarchy = plan.reuse
    if hierarchy is None:
        stage(HIERARCHY_STAGE, config.steps)
        sub = _selector(cube, select)(cube, plan.stores)
        outcome = artifacts.fit_or_load(
            fit_store, sub, config, priors, label=label, on_progress=on_progress, should_stop=should_stop
        )
        hierarchy = outcome.result
        if hierarchy.meta.get("cancelled"):
            raise EvaluationCancelled("cancelled while fitting the hierarchy; nothing was scored")
    stage(NEW_STORES_STAGE, config.steps)
    return coldstart(
        hierarchy,
        cube,
        sorted(int(i) for i in new_ids),
        int(known_days),
        int(horizon),
        seed=config.seed,
        config=config,
        n_samples=n_samples,
        on_progress=on_progress,
        should_stop=should_stop,
    )
