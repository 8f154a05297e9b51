"""Reading raw rows from local files: JSON Lines, JSON, CSV, TSV, Parquet and CoNLL column files.

Every row comes with a location (`file:line`) so that errors found later can point at it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hfmtl.errors import DataError

SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".conll": "conll",
    ".txt": "conll",
}

Row = tuple[str, dict[str, Any]]  # (where, record)


def detect_format(path: Path, declared: str | None) -> str:
    """The declared format, or the one the file suffix implies."""
    if declared is not None:
        return declared
    if path.suffix.lower() not in SUFFIX_FORMATS:
        raise DataError(
            f"{path}: cannot tell the format from the suffix '{path.suffix}'; set the task's data.format "
            f"to one of {', '.join(sorted(set(SUFFIX_FORMATS.values())))}"
        )
    return SUFFIX_FORMATS[path.suffix.lower()]


def read_rows(path: Path, file_format: str) -> Iterator[Row]:
    """Yield `(where, record)` for every row of a local file."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    readers = {
        "jsonl": _read_jsonl,
        "json": _read_json,
        "csv": _read_csv,
        "tsv": _read_tsv,
        "parquet": _read_parquet,
        "conll": _read_conll,
    }
    return readers[file_format](path)


def _read_jsonl(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{path}:{number}: not valid JSON ({error.msg}); expected one object per line"
                ) from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield f"{path}:{number}", record


def _read_json(path: Path) -> Iterator[Row]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a JSON list of objects (or use .jsonl, one object per line)")
    for index, record in enumerate(records):
        yield f"{path}[{index}]", record


def _read_csv(path: Path, delimiter: str = ",") -> Iterator[Row]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if not reader.fieldnames:
            return
        for record in reader:
            if None in record or None in record.values():
                raise DataError(
                    f"{path}:{reader.line_num}: {len(reader.fieldnames)} columns expected "
                    f"({', '.join(reader.fieldnames)}), found another number"
                )
            yield f"{path}:{reader.line_num}", record


def _read_tsv(path: Path) -> Iterator[Row]:
    return _read_csv(path, delimiter="\t")


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq  # pyarrow comes with datasets; import it only when a Parquet file is read

    for index, record in enumerate(pq.read_table(path).to_pylist()):
        yield f"{path} row {index + 1}", record


def _read_conll(path: Path) -> Iterator[Row]:
    """CoNLL columns: `word [pos chunk ...] tag` per line, blank lines between sentences, -DOCSTART- skipped.

    The record has `tokens` (first column), `ner_tags` (last column) and, for 4-column files, `pos_tags`
    and `chunk_tags`, matching the CoNLL-2003 JSON Lines layout.
    """
    sentence: list[list[str]] = []
    start = 0
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if sentence:
                    yield f"{path}:{start}", _conll_record(sentence)
                sentence = []
                continue
            if len(columns) < 2 or (sentence and len(columns) != len(sentence[0])):
                expected = len(sentence[0]) if sentence else "at least 2"
                raise DataError(f"{path}:{number}: expected {expected} space-separated columns, found {len(columns)}")
            if not sentence:
                start = number
            sentence.append(columns)
    if sentence:
        yield f"{path}:{start}", _conll_record(sentence)


def _conll_record(sentence: list[list[str]]) -> dict[str, Any]:
    columns = list(zip(*sentence, strict=True))
    record: dict[str, Any] = {"tokens": list(columns[0]), "ner_tags": list(columns[-1])}
    if len(columns) == 4:
        record["pos_tags"], record["chunk_tags"] = list(columns[1]), list(columns[2])
    return record
