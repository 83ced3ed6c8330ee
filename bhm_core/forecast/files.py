"""Forecast tables written to files a chunk of stores at a time: csv, parquet or one json document.

Every file is written next to its destination and renamed into place when complete, so a reader
(or a scheduled job that picks the file up) never sees half a forecast. CSV cells that begin with
=, +, - or @ are quoted as text (a spreadsheet would run them as formulas).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bhm_core.errors import DataError

FORMATS = ("csv", "parquet", "json")
FORMULA_START = ("=", "+", "-", "@")


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would read as a formula, prefixed with a quote (OWASP's rule).
    Numbers are left as they are: -3 stays a number."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            text = out[column].astype("string")
            risky = text.str.startswith(FORMULA_START).fillna(False)
            out[column] = text.where(~risky, "'" + text)
    return out


def format_of(path: str | Path, given: str | None) -> str:
    if given:
        return given
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "csv"


def companion(path: str | Path, name: str, fmt: str) -> Path:
    """The path of a second table beside the first: forecast.csv -> forecast.total.csv."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{name}.{'parquet' if fmt == 'parquet' else fmt}")


class TableFile:
    """A table written chunk by chunk and renamed into place on close()."""

    def __init__(self, path: str | Path, fmt: str):
        self.path, self.fmt = Path(path), fmt
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".tmp-{uuid.uuid4().hex}-{self.path.name}")
        self._writer, self._rows, self._parts = None, 0, []

    def write(self, frame: pd.DataFrame) -> None:
        try:
            self._write(frame)
        except OSError as exc:
            self.discard()
            raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _write(self, frame: pd.DataFrame) -> None:
        self._rows += len(frame)
        if self.fmt == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            self._writer.write_table(table, row_group_size=max(len(frame), 1))
        elif self.fmt == "csv":
            safe_for_spreadsheets(frame).to_csv(self._tmp, mode="a", header=self._writer is None, index=False)
            self._writer = True
        else:
            self._parts.append(frame)

    def close(self, document: dict | None = None) -> int:
        """Finish and rename into place; a json table becomes `document` with its rows under "rows"."""
        try:
            if self.fmt == "parquet" and self._writer is not None:
                self._writer.close()
            elif self.fmt == "json":
                rows = pd.concat(self._parts, ignore_index=True) if self._parts else pd.DataFrame()
                if "date" in rows:
                    rows["date"] = pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d")
                body = {**(document or {}), "rows": json.loads(rows.to_json(orient="records", date_format="iso"))}
                self._tmp.write_text(json.dumps(body), encoding="utf-8")
            if not self._tmp.exists():
                pd.DataFrame().to_csv(self._tmp, index=False)
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        finally:
            self._tmp.unlink(missing_ok=True)
        return self._rows

    def discard(self) -> None:
        if self.fmt == "parquet" and self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)
