"""Writing files so that a crash or a kill never leaves half a file: write a temporary file beside the
target, flush it to disk, then rename it over the target (a rename is atomic on one filesystem)."""

from __future__ import annotations

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
