"""Reading the fields of one raw data row, with errors that point at the row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hfmtl.errors import DataError


def read_column(record: Mapping[str, Any], column: str, where: str) -> Any:
    """`record[column]`, or an error listing the columns the row does have."""
    if column not in record:
        raise DataError(f"{where}: no column '{column}' (the row has: {', '.join(map(str, record))})")
    return record[column]


def read_text(record: Mapping[str, Any], column: str, where: str) -> str:
    """A non-empty string from `column`."""
    text = read_column(record, column, where)
    if not isinstance(text, str):
        raise DataError(f"{where}: column '{column}' must hold text, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise DataError(f"{where}: column '{column}' is empty")
    return text
