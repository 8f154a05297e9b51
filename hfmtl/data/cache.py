"""The on-disk cache of checked and tokenized splits, so a second run with the same inputs skips reading,
checking and tokenizing, and every split is a memory-mapped Arrow file rather than rows in memory.

An entry is a folder named by a hash of everything its content depends on (the file's bytes, the task's
columns and labels, the tokenizer, `max_length`, this module's CACHE_VERSION), so a changed input misses
the cache instead of reading stale rows. Files are written under a temporary name and renamed into place:
a killed run leaves no half-written entry, and two runs writing the same entry write the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset
from datasets.arrow_writer import ArrowWriter

from hfmtl.atomic import temporary_path, write_json_atomic
from hfmtl.errors import DataError

CACHE_VERSION = 2
"""Bump when what an entry holds changes shape: older entries are then never read."""
WRITER_BATCH_ROWS = 5_000
"""Rows per Arrow record batch in cache files (and per tokenization batch, since each one is written as a
record batch). Opening a memory-mapped file reads every batch's header, and reading a column reads every
batch's buffers; the kernel maps about 64 KB around each page it faults in. With `datasets`' 1,000-row
batches (about 100 KB of short sentences) that put most of the file in the process's resident memory just to
open it or to count its tokens; at 5,000 rows the headers touch a few MB, and the rows a writer holds before a
batch stay small (about 30 MB while tokenizing SST-2)."""


def cache_root() -> Path:
    """`$HFMTL_CACHE`, else `hfmtl/` in the datasets cache (`$HF_DATASETS_CACHE`, by default under `$HF_HOME`)."""
    if os.environ.get("HFMTL_CACHE"):
        return Path(os.environ["HFMTL_CACHE"]).expanduser()
    import datasets.config  # reads HF_HOME / HF_DATASETS_CACHE when imported

    return Path(datasets.config.HF_DATASETS_CACHE) / "hfmtl"


def file_digest(path: Path) -> str:
    """A hash of the file's bytes (not its size and time: a file rewritten within one clock tick at the same
    size would keep those, and its stale rows would be read)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()


def tokenizer_digest(tokenizer: Any) -> str:
    """A hash of what decides a tokenizer's output: its class, vocabulary and rules, special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        rules = json.loads(backend.to_str())
        for state in ("truncation", "padding"):  # set by calls, not by the tokenizer's identity
            rules.pop(state, None)
    else:
        rules = {"vocab": sorted(tokenizer.get_vocab().items())}
    return entry_key(type(tokenizer).__name__, rules, tokenizer.special_tokens_map, tokenizer.init_kwargs)


def entry_key(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (anything else is written by its `str`)."""
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@contextlib.contextmanager
def cache_writes(folder: Path) -> Iterator[None]:
    """Turn a failure to write the cache (read-only or full disk) into an error that says what to do."""
    try:
        yield
    except OSError as error:
        where = Path(str(error.filename)) if error.filename is not None else None
        if where is not None and not (where.is_relative_to(folder.parent) or folder.is_relative_to(where)):
            raise  # not the cache's: e.g. a data file that cannot be read while its rows are written
        raise DataError(
            f"cannot write the data cache in {folder}: {error.strerror or error}; set HFMTL_CACHE to a writable folder"
        ) from None


def read_json(path: Path) -> Any | None:
    """A cached JSON value, or None when it is not cached (or unreadable, which is treated the same)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _seal_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.seal.json")


def seal(path: Path, dataset: Dataset) -> Dataset:
    """Mark a finished cache file as whole: its bytes flushed to disk first, then a note of its row count and
    size. An Arrow stream cut at a record-batch boundary still opens, with fewer rows, so only a file that
    matches its seal is ever read back (a power loss, a partial copy of the cache)."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
    write_json_atomic(_seal_path(path), {"rows": len(dataset), "bytes": path.stat().st_size})
    return dataset


def cached_dataset(path: Path) -> Dataset | None:
    """The memory-mapped dataset of a sealed cache file, or None when there is none, it does not match its
    seal, or it cannot be read (damaged by something other than hfmtl): the caller then writes it anew."""
    if not path.is_file():
        return None
    note = read_json(_seal_path(path))
    if not isinstance(note, dict) or note.get("bytes") != path.stat().st_size:
        return None
    try:
        dataset = Dataset.from_file(str(path))
    except (OSError, pa.ArrowException):
        return None
    return dataset if len(dataset) == note.get("rows") else None


def write_dataset(path: Path, rows: Iterable[dict[str, Any]]) -> Dataset:
    """Write rows to an Arrow cache file in batches (never all in memory) and memory-map it. If `rows` raises
    (a bad row), nothing is left at `path`; no rows at all give an empty dataset and no file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = temporary_path(path)  # unique: each node's first process of a multi-node run fills the cache
    written = 0
    try:
        with ArrowWriter(path=str(partial), writer_batch_size=WRITER_BATCH_ROWS) as writer:
            for row in rows:
                writer.write(row)
                written += 1
            if not written:
                return Dataset.from_dict({})
            writer.finalize()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return seal(path, Dataset.from_file(str(path)))
