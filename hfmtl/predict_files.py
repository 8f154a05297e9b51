"""`hfmtl predict`: texts from the command line or a file in, one JSON object per text out (keyed by task)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import torch
from tqdm.auto import tqdm

from hfmtl.errors import DataError, InputError
from hfmtl.pipeline import MultiTaskPipeline

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def predict_to_stream(
    model: str | Path,
    *,
    texts: Sequence[str] = (),
    input_path: str | Path | None = None,
    output_path: str | Path | None = None,
    text_field: str = "text",
    batch_size: int = 32,
    device: str | None = None,
    dtype: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> int:
    """Predict on `texts` and/or the texts of `input_path`; write JSON lines to `output_path` or stdout.

    Returns how many texts were answered.
    """
    if not texts and input_path is None:
        raise InputError("nothing to predict on: give texts as arguments or a file with --input")
    pipeline = MultiTaskPipeline.from_pretrained(
        model,
        batch_size=batch_size,
        device=device,
        dtype=DTYPES[dtype] if dtype else None,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
    )
    items = list(texts) + (list(read_texts(Path(input_path), text_field)) if input_path else [])
    output: TextIO = open(output_path, "w", encoding="utf-8") if output_path else sys.stdout  # noqa: SIM115
    try:
        chunk = batch_size * 8  # enough per call for length-sorted batches; small enough for steady progress
        with tqdm(total=len(items), unit="text", disable=output_path is None) as bar:
            for start in range(0, len(items), chunk):
                for text, answer in zip(
                    items[start : start + chunk], pipeline(items[start : start + chunk]), strict=True
                ):
                    output.write(json.dumps({"text": text, **answer}, ensure_ascii=False) + "\n")
                bar.update(min(chunk, len(items) - start))
    finally:
        if output_path:
            output.close()
    return len(items)


def read_texts(path: Path, text_field: str) -> Iterator[str]:
    """Texts from a .txt file (one per non-empty line) or a .jsonl file (the `text_field` of each object)."""
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if path.suffix.lower() != ".jsonl":
                yield line.rstrip("\n")
                continue
            record = _json_line(line, path, number)
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise DataError(f"{path}:{number}: expected an object with a text field '{text_field}'")
            yield record[text_field]


def _json_line(line: str, path: Path, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
