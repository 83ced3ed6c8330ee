"""A model fitted to data drawn from itself is calibrated: its 50 % and 90 % forecast intervals hold
that share of the held-out days, for a chain of 5, 20 or 200 stores, at the default 100 steps."""

from __future__ import annotations

import numpy as np
import pytest

from bhm_core.data.sources import DemoSource, load_dataset

pytestmark = pytest.mark.slow
HORIZON = 42
TOLERANCE = 0.04  # coverage within 4 points of nominal


def _coverage(n_stores: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per held-out observed store-day: inside the 50 % interval, inside the 90 % interval."""
    from bhm_core.forecast.predict import forecast
    from bhm_core.inference.fit import fit
    from bhm_core.model.config import FitConfig

    cube = load_dataset(DemoSource(n_stores=n_stores, n_days=420, seed=seed)).cube()
    cutoff = cube.dates[-HORIZON - 1]
    shifted = cube.with_origin(cutoff)
    result = fit(shifted.select_days(None, cutoff), FitConfig(seed=seed))
    frame = forecast(
        result, shifted, shifted.store_ids, cutoff + np.timedelta64(1, "D"), cube.dates[-1], n_samples=400, seed=seed
    )
    seen = frame[frame["y"].notna()]
    inside = {
        level: ((seen["y"] >= seen[f"lo_{level}"]) & (seen["y"] <= seen[f"hi_{level}"])).to_numpy()
        for level in (50, 90)
    }
    return inside[50], inside[90]


@pytest.mark.parametrize("n_stores, seeds", [(5, range(6)), (20, range(3)), (200, range(1))])
def test_intervals_hold_their_share_of_held_out_days_whatever_the_chains_size(n_stores, seeds):
    held = [_coverage(n_stores, seed) for seed in seeds]
    c50 = np.concatenate([h[0] for h in held]).mean()
    c90 = np.concatenate([h[1] for h in held]).mean()
    assert abs(c50 - 0.5) <= TOLERANCE and abs(c90 - 0.9) <= TOLERANCE, (c50, c90)
