"""Results larger than memory: computed a chunk of stores at a time, streamed into a parquet file
(one row group per chunk, stores in ascending order), read back for just the stores one shows.

Memory while writing is that of one chunk (samples of chunk_stores x days x n_samples), whatever
the number of stores. Files are written next to their destination and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bhm_core.data.cube import SalesCube
from bhm_core.errors import DataError
from bhm_core.forecast.predict import forecast_chunks
from bhm_core.forecast.sampling import CHUNK_STORES, Scenario, draw_latents
from bhm_core.forecast.summaries import LEVELS
from bhm_core.inference.state import FitResult
from bhm_core.model.hierarchy import store_parameters


def _write(frames, path) -> dict:
    """Each frame becomes one row group; returns what was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    writer, rows, groups = None, 0, 0
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=max(len(frame), 1))
            rows, groups = rows + len(frame), groups + 1
        if writer is None:
            raise DataError("nothing to write: no stores were given")
        writer.close()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return {"path": str(path), "rows": rows, "row_groups": groups, "bytes": path.stat().st_size}


def forecast_to_parquet(
    result: FitResult,
    cube: SalesCube,
    path,
    store_ids=None,
    first=None,
    last=None,
    *,
    n_samples: int = 500,
    seed: int = 0,
    scenario: Scenario = Scenario(),
    levels=LEVELS,
    chunk_stores: int = CHUNK_STORES,
) -> dict:
    """`predict.forecast` streamed to parquet, a row group per chunk of stores (ascending ids).

    Row for row the same frame as `forecast` with the same arguments (draws are keyed by store).
    """
    ids = np.unique(result.store_ids if store_ids is None else np.asarray(store_ids, np.int64))
    frames = forecast_chunks(
        result,
        cube,
        ids,
        first,
        last,
        n_samples=n_samples,
        seed=seed,
        scenario=scenario,
        levels=levels,
        chunk_stores=chunk_stores,
    )
    return _write(frames, path)


def posterior_to_parquet(
    result: FitResult, path, *, n_samples: int = 200, seed: int = 0, chunk_stores: int = 4096
) -> dict:
    """Per store and feature: posterior mean and 90% interval of theta_s (and the log-dispersion
    r_s as feature 'log_dispersion'), streamed a chunk of stores at a time. Needs no cube, so it
    serves fits of virtual or synthetic series too."""
    import jax

    key = jax.random.PRNGKey(seed)
    names = [*list(result.feature_names), "log_dispersion"]

    def frames():
        for start in range(0, len(result.store_ids), chunk_stores):
            rows = np.arange(start, min(start + chunk_stores, len(result.store_ids)))
            stores = store_parameters(draw_latents(key, result, n_samples, rows))
            values = np.concatenate([stores.theta, stores.r[:, :, None]], axis=2)  # (n, stores, F + 1)
            lo, hi = np.percentile(values, [5, 95], axis=0)
            yield pd.DataFrame(
                {
                    "store": np.repeat(result.store_ids[rows], len(names)),
                    "feature": np.tile(names, len(rows)),
                    "mean": values.mean(0).ravel(),
                    "lo_90": lo.ravel(),
                    "hi_90": hi.ravel(),
                }
            )

    return _write(frames(), path)


def read_stores(path, store_ids=None, columns=None) -> pd.DataFrame:
    """Rows of the given stores (all when None), reading only the row groups that can hold them
    (each row group's min/max store id is in the file's metadata)."""
    handle = pq.ParquetFile(path)
    wanted = None if store_ids is None else np.unique(np.asarray(store_ids, np.int64))
    groups = list(range(handle.num_row_groups)) if wanted is None else row_groups_for(handle, wanted)
    if columns is not None and "store" not in columns:
        columns = ["store", *columns]
    if not groups:
        frame = handle.schema_arrow.empty_table().to_pandas()
        return frame if columns is None else frame[columns]
    frame = handle.read_row_groups(groups, columns=columns).to_pandas()
    if wanted is not None:
        frame = frame[np.isin(frame["store"].to_numpy(), wanted)].reset_index(drop=True)
    return frame


def row_groups_for(handle: pq.ParquetFile, store_ids: np.ndarray) -> list[int]:
    column = handle.schema_arrow.get_field_index("store")
    out = []
    for g in range(handle.num_row_groups):
        stats = handle.metadata.row_group(g).column(column).statistics
        if stats is None or not stats.has_min_max:
            out.append(g)
            continue
        lo = np.searchsorted(store_ids, stats.min, side="left")
        hi = np.searchsorted(store_ids, stats.max, side="right")
        if hi > lo:  # some wanted id lies in [min, max]
            out.append(g)
    return out
