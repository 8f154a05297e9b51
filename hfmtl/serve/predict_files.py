"""`hfmtl predict`: texts from the command line or a file in, one JSON object per text out (keyed by task)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import torch
from tqdm.auto import tqdm

from hfmtl.atomic import atomic_open
from hfmtl.data.readers import SUFFIX_FORMATS, raise_problems, read_rows, read_text_file
from hfmtl.errors import DataError, InputError
from hfmtl.serve.inputs import undecodable
from hfmtl.serve.pipeline import MultiTaskPipeline
from hfmtl.serve.words import split_words

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def predict_to_stream(
    model: str | Path,
    *,
    texts: Sequence[str] = (),
    input_path: str | Path | None = None,
    output_path: str | Path | None = None,
    text_field: str = "text",
    text_pair_field: str | None = None,
    batch_size: int = 32,
    device: str | None = None,
    dtype: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    backend: str = "torch",
    quantize: str | None = None,
) -> int:
    """Predict on `texts` and/or the texts of `input_path`; write JSON lines to `output_path` or stdout.

    Returns how many texts were answered.
    """
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    if not texts and input_path is None:
        raise InputError("nothing to predict on: give texts as arguments or a file with --input")
    # Everything that can be checked without the model is, before it loads: the texts, and the output's folder.
    located: list[tuple[str | None, Any]] = [(None, text) for text in texts]  # arguments: no file, no line
    if input_path:
        located += located_texts(Path(input_path), text_field, text_pair_field)
    if output_path is not None and not Path(output_path).parent.is_dir():
        raise DataError(f"--output {output_path}: the folder {Path(output_path).parent} does not exist")
    if output_path is not None and Path(output_path).is_dir():
        raise DataError(f"--output {output_path} is a folder; give the path of the JSON lines file to write")
    if output_path is not None and not os.access(Path(output_path).parent, os.W_OK):
        raise DataError(f"--output {output_path}: the folder {Path(output_path).parent} is not writable")
    pipeline = MultiTaskPipeline.from_pretrained(
        model,
        batch_size=batch_size,
        device=device,
        dtype=DTYPES[dtype] if dtype else None,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        backend=backend,
        quantize=quantize,
    )
    if output_path is None:
        _write_answers(pipeline, located, batch_size, sys.stdout, progress=False)
        return len(located)
    # Answers go to a temporary file renamed over --output only once all are written: a failure part-way
    # (or --output naming the input file) leaves whatever was there before untouched.
    with atomic_open(output_path) as output:
        _write_answers(pipeline, located, batch_size, output, progress=True)
    return len(located)


def _write_answers(
    pipeline: MultiTaskPipeline,
    located: list[tuple[str | None, Any]],
    batch_size: int,
    output: TextIO,
    *,
    progress: bool,
) -> None:
    chunk = batch_size * 8  # enough per call for length-sorted batches; small enough for steady progress
    with tqdm(total=len(located), unit="text", disable=not progress) as bar:
        for start in range(0, len(located), chunk):
            items = [item for _, item in located[start : start + chunk]]
            try:
                answers = pipeline(items)
            except InputError as error:
                raise _located(error, pipeline, located[start : start + chunk]) from None
            for item, answer in zip(items, answers, strict=True):
                shown = {"text": item[0], "text_pair": item[1]} if isinstance(item, tuple) else {"text": item}
                output.write(json.dumps({**shown, **answer}, ensure_ascii=False) + "\n")
            bar.update(len(items))


def _located(error: InputError, pipeline: MultiTaskPipeline, located: list[tuple[str | None, Any]]) -> InputError:
    """The pipeline's error for the first text it refuses alone, with the file and line of that text: its
    message for the whole chunk counts texts from the chunk's start, which names no line of the file."""
    for where, item in located:
        try:
            pipeline([item])
        except InputError as alone:
            return InputError(f"{where}: {alone}") if where else alone
    return error


INPUT_SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".tsv")


def located_texts(path: Path, text_field: str, text_pair_field: str | None = None) -> list[tuple[str, Any]]:
    """The texts of an input file, read as what its suffix says: .txt (one text per non-empty line), .jsonl
    (the `text_field` of each object), .json (a list of strings, or of objects with `text_field`), .csv/.tsv
    (the `text_field` column). With `text_pair_field`, each item is a `(text, text_pair)` pair read from the
    two fields (files with fields only). Every text must be non-empty; errors name the file and line (from 1).
    `-` is standard input, read as .txt (`... | hfmtl predict MODEL --input -`)."""
    is_stdin = str(path) == "-"
    if not is_stdin and not path.is_file():
        raise DataError(f"input file not found: {path}")
    suffix = ".txt" if is_stdin else path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise DataError(f"{path}: --input reads {', '.join(INPUT_SUFFIXES)} files, not '{suffix or 'no suffix'}'")
    if text_pair_field is not None and suffix == ".txt":
        raise DataError(f"{path}: --text-pair-field needs a file with fields (.jsonl, .json, .csv, .tsv), not .txt")
    if suffix == ".txt":
        text = sys.stdin.read().removeprefix("\ufeff") if is_stdin else read_text_file(path)
        name = "<stdin>" if is_stdin else path
        texts = [
            (f"{name}:{n}", line.removesuffix("\r")) for n, line in enumerate(text.split("\n"), 1) if line.strip()
        ]
        for where, line in texts:  # a file is decoded strictly when read; standard input arrives as it came
            if (problem := undecodable(line)) is not None:
                raise DataError(f"{where}: {problem}")
    elif suffix == ".json":
        texts = _json_texts(path, text_field, text_pair_field)
    else:
        rows = read_rows(path, SUFFIX_FORMATS[suffix])
        texts = [(where, _item(record, text_field, text_pair_field, where)) for where, record in rows]
    if not texts:
        raise DataError(f"{path}: no texts to predict on")
    problems = [
        f"{where}: the {name} is empty or only whitespace"
        if not text.strip()
        else f"{where}: the {name} has no words, only invisible separators (e.g. zero-width spaces)"
        for where, item in texts
        for name, text in zip(("text", "text_pair"), item if isinstance(item, tuple) else (item,), strict=False)
        if not split_words(text)
    ]
    raise_problems(problems, f"texts of {path} cannot be used")
    return texts


def _json_texts(path: Path, text_field: str, text_pair_field: str | None) -> list[tuple[str, Any]]:
    try:
        items = json.loads(read_text_file(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of texts (strings, or objects with '{text_field}')")
    return [
        (
            f"{path}[{i + 1}]",
            item
            if isinstance(item, str) and text_pair_field is None
            else _item(item, text_field, text_pair_field, f"{path}[{i + 1}]"),
        )
        for i, item in enumerate(items)
    ]


def _item(record: Any, text_field: str, text_pair_field: str | None, where: str) -> str | tuple[str, str]:
    """A record's text, or its (text, text_pair) when a pair field is named."""
    text = _field(record, text_field, "--text-field", where)
    return text if text_pair_field is None else (text, _field(record, text_pair_field, "--text-pair-field", where))


def _field(record: Any, field: str, flag: str, where: str) -> str:
    if not isinstance(record, dict) or not isinstance(record.get(field), str):
        raise DataError(f"{where}: expected an object with a text field '{field}' (see {flag})")
    return record[field]
