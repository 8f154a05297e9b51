"""Files that can be trusted: written so that a crash or a kill never leaves half a file (a temporary file
beside the target, flushed, then renamed over it: a rename is atomic on one filesystem), and fingerprinted
(sha256) so that a damaged one is recognised later."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def temporary_path(path: Path) -> Path:
    """A name beside `path` that no other writer uses: the process id alone repeats across the nodes of a
    multi-node run sharing one folder, and across containers."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.partial")


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[TextIO]:
    """A text file to write that replaces `path` only when the block ends without an error, flushed to disk
    first; on an error (or a kill) `path` keeps what it had and the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path` with `text`, all at once."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Replace `path` with `data` as indented JSON, all at once."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
