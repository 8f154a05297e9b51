"""Files that can be trusted: written so that a crash or a kill never leaves half a file (a temporary file
beside the target, flushed, then renamed over it: a rename is atomic on one filesystem), and fingerprinted
(sha256) so that a damaged one is recognised later."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path` with `text`, all at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


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
