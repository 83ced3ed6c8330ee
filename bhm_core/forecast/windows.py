"""How a forecast window over recorded and future days is drawn under a what-if.

Days inside the data are drawn as recorded and later days under the scenario, each part with its
own seed: the history part then stays the same whatever the horizon or the what-if
(Scenario(1) over the whole window would also rewrite the recorded days' promo).
"""

from __future__ import annotations

import numpy as np

from bhm_core.forecast.sampling import Scenario

HISTORY_SEED, FUTURE_SEED = 0, 1


def future_scenario(future) -> Scenario:
    """Days after the data: a Scenario as given (the plan or a what-if), or for a flag, promo on
    Mon-Fri (True) or no promo (False)."""
    if isinstance(future, Scenario):
        return future
    return Scenario(1) if future else Scenario()


def window_parts(first, last, data_end, future) -> list[tuple]:
    """[(first, last, scenario, seed)] covering [first, last]: the part up to data_end as
    recorded, the part after it under `future` (see future_scenario)."""
    first, last, end = (np.datetime64(d, "D") for d in (first, last, data_end))
    future = future_scenario(future)
    if last <= end:
        return [(first, last, Scenario(), HISTORY_SEED)]
    if first > end:
        return [(first, last, future, FUTURE_SEED)]
    return [(first, end, Scenario(), HISTORY_SEED), (end + np.timedelta64(1, "D"), last, future, FUTURE_SEED)]


def day_scenario(day, data_end, future) -> Scenario:
    """The scenario of one day: as recorded inside the data, `future` after it."""
    after = np.datetime64(day, "D") > np.datetime64(data_end, "D")
    return future_scenario(future) if after else Scenario()
