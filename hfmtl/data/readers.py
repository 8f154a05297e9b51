"""Reading raw rows from local files: JSON Lines, JSON, CSV, TSV, Parquet and CoNLL column files.

Every row comes with a location (`file:line`) so that errors found later can point at it.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
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


MAX_REPORTED_PROBLEMS = 10
"""A file with many bad rows reports this many of them, then a count."""


def read_rows(path: Path, file_format: str, *, quoting: str | None = None, multiline: bool = False) -> list[Row]:
    """Every row of a local file as `(where, record)`, or an error listing every bad row (none is skipped).

    Text files are read as UTF-8 (a byte-order mark is accepted). `quoting` applies to CSV/TSV files: `csv`
    (the default for .csv) reads `"`-quoted fields; `none` (the default for .tsv) treats `"` as a character.
    `multiline` allows a quoted field to span lines; without it such a field is an error at the line where
    its quote opened (most often a quote that was never closed).
    """
    return list(iter_rows(path, file_format, quoting=quoting, multiline=multiline))


def iter_rows(
    path: Path, file_format: str, *, quoting: str | None = None, multiline: bool = False, limit: int | None = None
) -> Iterator[Row]:
    """The rows of `read_rows` one at a time, stopping after `limit` good rows. JSON Lines and CoNLL files
    are read line by line, so a large file never sits in memory whole. The error listing the bad rows comes
    after the last row read: consume the rows to the end before trusting them."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if file_format not in ("csv", "tsv") and (quoting is not None or multiline):
        raise DataError(f"{path}: data.quoting and data.multiline apply to csv and tsv files, not {file_format}")
    if file_format in ("jsonl", "conll"):
        stream = _STREAMED[file_format](path, _file_lines(path))
        try:
            yield from itertools.islice(stream, limit)
        finally:
            stream.close()  # rows past the limit are not read; the problems met so far are raised on close
        return
    if file_format == "parquet":
        rows = list(_read_parquet(path))
    elif file_format in ("csv", "tsv"):
        text = read_text_file(path)
        quoting = quoting or ("csv" if file_format == "csv" else "none")
        if multiline and quoting != "csv":
            raise DataError(f"{path}: data.multiline needs data.quoting: csv (without quotes no field spans lines)")
        rows = _read_delimited(path, text, "," if file_format == "csv" else "\t", quoting, multiline)
    else:
        rows = _read_json(path, read_text_file(path))
    yield from itertools.islice(rows, limit)


def _file_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file read line by line (a byte-order mark is accepted), split at
    \n (and \r\n) only, as files have lines."""
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                bad = offset + error.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)
                raise DataError(
                    f"{path}: not UTF-8 text: the byte at offset {bad} (0x{raw[bad - offset]:02x}) cannot be decoded; "
                    "save the file as UTF-8"
                ) from None
            offset += len(raw)
            yield number, line.removesuffix("\n").removesuffix("\r")


def read_text_file(path: Path) -> str:
    """A text file's content: UTF-8, with or without a byte-order mark; anything else is a clear error."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text: the byte at offset {error.start} (0x{data[error.start]:02x}) cannot be decoded; "
            "save the file as UTF-8"
        ) from None


def raise_problems(problems: list[str], what: str) -> None:
    """Raise one DataError listing every problem (up to MAX_REPORTED_PROBLEMS, then a count); `what` says
    which rows, e.g. "rows of x.tsv cannot be read". Nothing to raise when there is no problem."""
    if len(problems) == 1:
        raise DataError(problems[0])
    if problems:
        shown = "\n  ".join(problems[:MAX_REPORTED_PROBLEMS])
        hidden = len(problems) - MAX_REPORTED_PROBLEMS
        more = f"\n  ... and {hidden} more" if hidden > 0 else ""
        raise DataError(f"{len(problems)} {what}:\n  {shown}{more}")


def _read_jsonl(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[Row]:
    problems = []
    try:
        for number, line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(f"{path}:{number}: not valid JSON ({error.msg}); expected one object per line")
                continue
            if not isinstance(record, dict):
                problems.append(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
                continue
            yield f"{path}:{number}", record
    except DataError as error:  # the file stops being readable (a bad byte): reported with the rows before it
        problems.append(str(error))
    finally:  # also when the reader stops early (a row limit): the rows read so far had these problems
        raise_problems(problems, f"rows of {path} cannot be read")


def _read_json(path: Path, text: str) -> list[Row]:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a JSON list of objects (or use .jsonl, one object per line)")
    return [(f"{path}[{index}]", record) for index, record in enumerate(records)]


UNCLOSED_QUOTE = (
    'a quoted field opens on this line and does not close on it (a stray or unclosed `"`?); set data.multiline: '
    'true if fields span lines, or data.quoting: none if `"` is text'
)


def _read_delimited(path: Path, text: str, delimiter: str, quoting: str, multiline: bool) -> list[Row]:
    """CSV or TSV with a header row; every row must have the header's number of fields."""
    options: dict[str, Any] = {"delimiter": delimiter, "strict": True}
    if quoting == "none":
        options.update(quoting=csv.QUOTE_NONE, quotechar=None)
    reader = csv.reader(io.StringIO(text, newline=""), **options)
    header: list[str] | None = None
    rows, problems, line = [], [], 1
    try:
        for fields in reader:
            start, line = line, reader.line_num + 1  # this record's first line; the next record's
            if reader.line_num > start and not multiline:
                problems.append(f"{path}:{start}: {UNCLOSED_QUOTE}")
                continue
            if not fields:
                continue
            if header is None:
                header = _checked_header(path, fields)
            elif len(fields) != len(header):
                problems.append(
                    f"{path}:{start}: {len(fields)} fields, but the header has {len(header)} ({', '.join(header)})"
                )
            else:
                rows.append((f"{path}:{start}", dict(zip(header, fields, strict=True))))
    except csv.Error as error:  # the record that starts at `line` is malformed; nothing after it can be trusted
        is_unclosed = "unexpected end of data" in str(error)
        problems.append(f"{path}:{line}: {UNCLOSED_QUOTE if is_unclosed else f'{error} (a misplaced quote?)'}")
    raise_problems(problems, f"rows of {path} cannot be read")
    return rows


def _checked_header(path: Path, names: list[str]) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}:1: the header names column(s) {', '.join(map(repr, repeated))} more than once")
    return names


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq  # pyarrow comes with datasets; import it only when a Parquet file is read

    for index, record in enumerate(pq.read_table(path).to_pylist()):
        yield f"{path} row {index + 1}", record


def _read_conll(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[Row]:
    """CoNLL columns: `word [pos chunk ...] tag` per line, blank lines between sentences, -DOCSTART- skipped.

    The record has `tokens` (first column), `ner_tags` (last column) and, for 4-column files, `pos_tags`
    and `chunk_tags`, matching the CoNLL-2003 JSON Lines layout.
    """
    sentence: list[list[str]] = []
    problems, start = [], 0
    try:
        for number, line in itertools.chain(lines, [(-1, "")]):  # a blank line at the end closes the last one
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if sentence:
                    yield f"{path}:{start}", _conll_record(sentence)
                sentence = []
                continue
            if len(columns) < 2 or (sentence and len(columns) != len(sentence[0])):
                expected = len(sentence[0]) if sentence else "at least 2"
                problems.append(f"{path}:{number}: expected {expected} space-separated columns, found {len(columns)}")
                continue
            if not sentence:
                start = number
            sentence.append(columns)
    finally:  # also when the reader stops early (a row limit): the rows read so far had these problems
        raise_problems(problems, f"rows of {path} cannot be read")


_STREAMED = {"jsonl": _read_jsonl, "conll": _read_conll}


def _conll_record(sentence: list[list[str]]) -> dict[str, Any]:
    columns = list(zip(*sentence, strict=True))
    record: dict[str, Any] = {"tokens": list(columns[0]), "ner_tags": list(columns[-1])}
    if len(columns) == 4:
        record["pos_tags"], record["chunk_tags"] = list(columns[1]), list(columns[2])
    return record
