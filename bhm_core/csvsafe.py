"""CSV text that is safe to open in a spreadsheet.

A cell that begins with =, +, -, @, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula; a store name or an uploaded label such as `=HYPERLINK(...)` would then
run when the file is opened. Following OWASP's advice on CSV injection, such text cells get a
leading single quote. Numbers stay numbers (a negative uplift is -12.5, not '-12.5).
"""

from __future__ import annotations

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value):
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


def to_csv(frame: pd.DataFrame, **options) -> str:
    """The frame as CSV text (no index unless asked), text cells escaped; column names too."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(escape_cell)
    safe.columns = [escape_cell(str(c)) for c in safe.columns]
    options.setdefault("index", False)
    return safe.to_csv(**options)
