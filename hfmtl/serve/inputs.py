"""What the pipeline accepts: texts, `(text, text_pair)` tuples or `{"text", "text_pair"}` dicts, checked with
errors that name the input, and each text's words (`hfmtl.serve.words.split_words`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hfmtl.errors import InputError
from hfmtl.serve.words import split_words

PipelineInput = str | tuple[str, str] | Mapping[str, str]


def is_pair(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(part, str) for part in value)


def read_inputs(inputs: list[Any], *, has_pairs: bool) -> tuple[list[str], list[Any]]:
    """Each input's first text and its second (None without one). A model without pair tasks refuses an
    input with a second text rather than read half of it."""
    if not inputs:
        raise InputError("no texts to predict on: give a string or a non-empty list of strings")
    texts, pairs = [], []
    for index, value in enumerate(inputs):
        where = "the input" if len(inputs) == 1 else f"input {index + 1}"
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"text", "text_pair"})
            if "text" not in value or unknown:
                raise InputError(
                    f"{where} is a dict, so it needs the key 'text' (and 'text_pair'), got {sorted(value)}"
                )
            value = (value["text"], value.get("text_pair"))
        elif isinstance(value, tuple):
            if len(value) != 2:
                raise InputError(f"{where} is a tuple of {len(value)}; a sentence pair is (text, text_pair)")
        else:
            value = (value, None)
        if value[1] is not None and not has_pairs:
            raise InputError(f"{where} is a pair of texts, but this model has no sentence-pair task; give one text")
        texts.append(value[0])
        pairs.append(value[1])
    check_texts(texts)
    for index, pair in enumerate(pairs):
        where = "the input's" if len(inputs) == 1 else f"input {index + 1}'s"
        if pair is not None and not isinstance(pair, str):
            raise InputError(f"{where} text_pair is {type(pair).__name__} {pair!r:.60}, not a string")
        if pair is not None and (problem := undecodable(pair)) is not None:
            raise InputError(f"{where} text_pair is not valid unicode: {problem}")
        if pair is not None and not pair.strip():
            raise InputError(f"{where} text_pair is empty or only whitespace; there is nothing to compare")
    return texts, pairs


def split_texts(texts: list[Any]) -> list[list[tuple[int, int]]]:
    """Each text's word spans (`hfmtl.serve.words.split_words`), once every text is checked to have words."""
    words = [split_words(text) for text in texts]
    for index, spans in enumerate(words):
        if not spans:  # invisible separators only, such as zero-width spaces: str.strip keeps those
            where = "the text" if len(texts) == 1 else f"text {index + 1}"
            raise InputError(f"{where} has no words, only invisible separators (e.g. zero-width spaces)")
    return words


def check_texts(texts: list[Any]) -> None:
    if not texts:
        raise InputError("no texts to predict on: give a string or a non-empty list of strings")
    for index, text in enumerate(texts):
        where = "the text" if len(texts) == 1 else f"text {index + 1}"
        if not isinstance(text, str):
            raise InputError(f"{where} is {type(text).__name__} {text!r:.60}, not a string")
        if not text.strip():
            raise InputError(f"{where} is empty or only whitespace; there is nothing to predict on")
        if (problem := undecodable(text)) is not None:
            raise InputError(f"{where} is not valid unicode: {problem}")


def undecodable(text: str) -> str | None:
    """Where a text holds a lone surrogate, or None. Python reads bytes that are not UTF-8 (in a command-line
    argument, or from standard input) as such code points, which no tokenizer takes."""
    for index, character in enumerate(text):
        if "\ud800" <= character <= "\udfff":
            byte = f"byte 0x{ord(character) - 0xDC00:02x}" if "\udc80" <= character <= "\udcff" else "a surrogate"
            return f"{byte} at character {index + 1} is not UTF-8 text (save or pass it as UTF-8)"
    return None
