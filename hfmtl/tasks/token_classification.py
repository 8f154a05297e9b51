"""Token classification (e.g. NER with BIO tags): one tag per word.

Words are split into sub-tokens; the word's tag goes on its first sub-token and -100 (ignored by the loss)
on continuation pieces and special tokens. Truncation drops whole trailing sub-tokens, so the labels of the
words that remain stay aligned; a word cut off entirely has no label in the batch, and neither has a word the
tokenizer yields no sub-token for (e.g. a lone zero-width space). `label_words` records which word each label
belongs to, so evaluation puts every prediction back on its own word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.errors import DataError
from hfmtl.tasks.labels import IGNORE_INDEX, label_id
from hfmtl.tasks.rows import read_column

if TYPE_CHECKING:
    from hfmtl.config import TaskConfig

HAS_LABEL_SET = True


def label_values(record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
    """The raw tags of one row, used to infer the tag set."""
    return list(_read_words_and_tags(record, task, where)[1])


def make_example(record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str], where: str) -> dict[str, Any]:
    """Check one raw row and turn it into `{"tokens": [word], "tags": [tag id]}`."""
    words, tags = _read_words_and_tags(record, task, where)
    return {"tokens": words, "tags": [label_id(tag, labels, f"{where} (word {i + 1})") for i, tag in enumerate(tags)]}


def tokenize(examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    """Batched `Dataset.map` function: sub-token ids, tags aligned to each word's first sub-token, and the word
    index of each of those labels (`label_words`, read by evaluation; training reads only the first two)."""
    encoded = tokenizer(examples["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = [encoded.word_ids(i) for i in range(len(examples["tokens"]))]
    return {
        "input_ids": encoded["input_ids"],
        "labels": [align_labels(ids, tags) for ids, tags in zip(word_ids, examples["tags"], strict=True)],
        "label_words": [label_words(ids) for ids in word_ids],
    }


def align_labels(word_ids: Sequence[int | None], word_tags: Sequence[int]) -> list[int]:
    """Per sub-token labels: the word's tag on its first piece, IGNORE_INDEX elsewhere."""
    return [IGNORE_INDEX if word is None else word_tags[word] for word in _word_starts(word_ids)]


def label_words(word_ids: Sequence[int | None]) -> list[int]:
    """The word index of each labelled sub-token, in order (one per word that kept a sub-token)."""
    return [word for word in _word_starts(word_ids) if word is not None]


def _word_starts(word_ids: Sequence[int | None]) -> list[int | None]:
    """Per sub-token: its word's index on the word's first piece, None on continuation pieces and special tokens."""
    pieces, previous = [], None
    for word in word_ids:
        pieces.append(None if word == previous else word)
        previous = word
    return pieces


def decode(text: str, words: Sequence[tuple[int, int, str, float]]) -> list[dict[str, Any]]:
    """Words of `text` as (start, end, tag, score) → entity spans, read from BIO tags.

    An entity starts at `B-X`, or at an `I-X` that does not continue an X entity (as conlleval reads it);
    a tag without a B-/I- prefix counts as `I-`. Each span's `word` is exactly `text[start:end]`, and its
    score is the mean of its words' scores.
    """
    entities: list[dict[str, Any]] = []
    scores: list[float] = []
    for start, end, tag, score in words:
        prefix, _, entity_type = tag.partition("-") if "-" in tag else ("I", "-", tag)
        continues = entities and scores and entities[-1]["entity_group"] == entity_type and prefix == "I"
        if tag == "O":
            scores = []
        elif continues:
            entities[-1]["end"] = end
            scores.append(score)
            entities[-1]["score"] = sum(scores) / len(scores)
        else:
            entities.append({"entity_group": entity_type, "start": start, "end": end, "score": score})
            scores = [score]
    for entity in entities:
        entity["word"] = text[entity["start"] : entity["end"]]
    return entities


def _read_words_and_tags(record: Mapping[str, Any], task: TaskConfig, where: str) -> tuple[list[str], list[Any]]:
    words = read_column(record, task.tokens_column, where)
    tags = read_column(record, task.label_column, where)
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DataError(f"{where}: column '{task.tokens_column}' must be a list of words")
    if not isinstance(tags, list):
        raise DataError(f"{where}: column '{task.label_column}' must be a list of tags")
    if not words:
        raise DataError(f"{where}: the sentence has no words")
    blank = [str(i + 1) for i, word in enumerate(words) if not word.strip()]
    if blank:  # the tokenizer gives such a word no token: its tag would be silently dropped
        raise DataError(f"{where}: word {', '.join(blank)} is empty or only whitespace; every word needs characters")
    if len(words) != len(tags):
        raise DataError(
            f"{where}: {len(words)} words but {len(tags)} tags in '{task.label_column}'; expected one tag per word"
        )
    return words, tags
