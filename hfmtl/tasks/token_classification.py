"""Token classification (e.g. NER with BIO tags): one tag per word.

Words are split into sub-tokens; the word's tag goes on its first sub-token and -100 (ignored by the loss)
on continuation pieces and special tokens. Truncation drops whole trailing sub-tokens, so the labels of the
words that remain stay aligned; a word cut off entirely has no label in the batch, and neither has a word the
tokenizer yields no sub-token for (e.g. a lone zero-width space). `label_words` records which word each label
belongs to, so evaluation puts every prediction back on its own word. Evaluation scores per word against the
full gold sequence, and a word without a prediction (cut off, or with no sub-token at all) counts as `O`.
NER scores are entity-level in the CoNLL sense: an entity counts only when its type and both boundaries are
right (seqeval's default, conlleval-compatible mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hfmtl.errors import ConfigError, DataError
from hfmtl.tasks.kind import EvalSet, Scored, refuse_threshold
from hfmtl.tasks.labels import IGNORE_INDEX, label_id
from hfmtl.tasks.rows import read_column

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

    from hfmtl.config.run_config import TaskConfig
    from hfmtl.model.modeling import TaskSpec


class TokenClassification:
    name = "token_classification"
    has_label_set = True
    main_metric = "f1"
    pipeline_tag = "token-classification"
    answer_shape = "[{'entity_group', 'word', 'start', 'end', 'score'}]"
    default_label_column = "ner_tags"  # what the CoNLL reader calls the tags
    per_text = False
    breakdown = "per_type"
    metric_feature = ("string", True)
    softmax_loss = True

    def check_config(self, task: TaskConfig, where: str) -> None:
        refuse_threshold(task, where)
        if task.text_pair_column is not None:
            raise ConfigError(f"'{where}.text_pair_column' does not apply to token_classification (one tag per word)")

    def check_spec(self, spec: TaskSpec) -> str | None:
        labels = spec.labels
        if labels is None or len(set(labels)) != len(labels) or len(labels) < 2:
            return f"needs at least two distinct label names, got {labels}"
        return None

    def label_values(self, record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
        """The raw tags of one row, used to infer the tag set."""
        return list(_read_words_and_tags(record, task, where)[1])

    def make_example(
        self, record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str] | None, where: str
    ) -> dict[str, Any]:
        """Check one raw row and turn it into `{"tokens": [word], "tags": [tag id]}`."""
        words, tags = _read_words_and_tags(record, task, where)
        names = labels or ()
        return {
            "tokens": words,
            "tags": [label_id(tag, names, f"{where} (word {i + 1})") for i, tag in enumerate(tags)],
        }

    def tokenize(self, examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
        """Sub-token ids, tags aligned to each word's first sub-token, and the word index of each of those labels
        (`label_words`, read by evaluation; training reads only the first two)."""
        encoded = tokenizer(examples["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        word_ids = [encoded.word_ids(i) for i in range(len(examples["tokens"]))]
        return {
            "input_ids": encoded["input_ids"],
            "labels": [align_labels(ids, tags) for ids, tags in zip(word_ids, examples["tags"], strict=True)],
            "label_words": [label_words(ids) for ids in word_ids],
        }

    def eval_set(self, task: str, dataset: Dataset) -> EvalSet:
        columns = zip(dataset["input_ids"], dataset["labels"], dataset["label_words"], strict=True)
        rows = [
            {"input_ids": ids, "labels": labels, "index": index, "label_words": words}
            for index, (ids, labels, words) in enumerate(columns)
        ]
        return EvalSet(task=task, kind=self.name, rows=rows, gold=dataset["tags"], inputs=dataset["tokens"])

    def batch_predictions(
        self, logits: torch.Tensor, batch: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[dict[int, tuple[int, float]]]:
        """Per row, word index → (tag id, probability) read at the word's first sub-token. Keyed by word, not
        packed in order: a word with no sub-token must not shift the words after it."""
        probabilities, ids = logits.float().softmax(-1).max(-1)
        kept = batch["labels"] != IGNORE_INDEX  # each word's first sub-token
        predictions = []
        for row, row_ids, row_probabilities, row_kept in zip(rows, ids, probabilities, kept, strict=True):
            pairs = zip(row_ids[row_kept].tolist(), row_probabilities[row_kept].tolist(), strict=True)
            predictions.append(dict(zip(row["label_words"], pairs, strict=True)))
        return predictions

    def score(self, eval_set: EvalSet, predicted: list[Any], spec: TaskSpec) -> Scored:
        from hfmtl.evaluation.metrics import compute_metrics

        names = list(spec.labels or ())
        predicted_tags = [
            [names[by_word[i][0]] if i in by_word else "O" for i in range(len(gold))]
            for by_word, gold in zip(predicted, eval_set.gold, strict=True)
        ]
        gold_tags = [[names[tag] for tag in gold] for gold in eval_set.gold]
        records = [
            {"index": i, "tokens": words, "gold": gold, "prediction": tags}
            for i, (words, gold, tags) in enumerate(zip(eval_set.inputs, gold_tags, predicted_tags, strict=True))
        ]
        return Scored(compute_metrics(self.name, predicted_tags, gold_tags, None), records)

    def scores(
        self, predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], label_names: Any
    ) -> dict[str, Any]:
        """Entity-level precision/recall/F1 overall (micro) and per entity type, plus per-word tag accuracy."""
        import numpy as np
        from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

        predicted, gold = [list(p) for p in predictions], [list(r) for r in references]
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        words = [(p, g) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)]
        return {
            "precision": float(precision_score(gold, predicted, zero_division=0)),
            "recall": float(recall_score(gold, predicted, zero_division=0)),
            "f1": float(f1_score(gold, predicted, zero_division=0)),
            "tag_accuracy": float(np.mean([p == g for p, g in words])) if words else 0.0,
            "per_type": {
                name: {
                    "precision": float(v["precision"]),
                    "recall": float(v["recall"]),
                    "f1": float(v["f1-score"]),
                    "support": int(v["support"]),
                }
                for name, v in report.items()
                if not name.endswith(" avg")
            },
        }

    def window_outputs(self, logits: torch.Tensor, lengths: Sequence[int]) -> list[Any]:
        """Each window's tokens' (best tag probabilities, best tag ids), read to the host once per batch."""
        scores, tags = logits.float().softmax(-1).max(-1)
        scores, tags = scores.tolist(), tags.tolist()
        return [(scores[row][:length], tags[row][:length]) for row, length in enumerate(lengths)]

    def answer(
        self,
        text: str,
        words: Sequence[tuple[int, int]],
        windows: Sequence[Any],
        outputs: list[Any],
        spec: TaskSpec,
    ) -> list[dict[str, Any]]:
        return decode(text, word_tags(words, windows, outputs, spec.labels or ()))

    def figure(self, task: str, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
        from hfmtl.evaluation.plots import bars_svg

        f1 = {name: scores["f1"] for name, scores in metrics["per_type"].items()}
        return bars_svg(f1, f"{task}: F1 per entity type", "F1")

    def init_head(self, head: Any, train: Dataset) -> None:
        """The head's random initialisation is kept."""


TOKEN_CLASSIFICATION = TokenClassification()


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


def word_tags(
    words: Sequence[tuple[int, int]], windows: Sequence[Any], outputs: Sequence[Any], labels: Sequence[str]
) -> list[tuple[int, int, str, float]]:
    """Each word's (start, end, tag, score): the tag read at its first sub-token (as in training), from the
    window where that sub-token sits farthest from the window's edges (so it saw the most context).

    `windows` have `input_ids`, `word_ids` and `offsets` (character spans); `outputs` are their
    `window_outputs`. A word the tokenizer gives no token (only characters it drops) has no tag, and is left out.
    """
    first_starts: dict[int, int] = {}  # where each word's first sub-token starts, over all windows
    for window in windows:
        for word, (start, _) in zip(window.word_ids, window.offsets, strict=True):
            if word is not None:
                first_starts[word] = min(first_starts.get(word, start), start)
    best: dict[int, tuple[int, str, float]] = {}
    for window, (scores, tags) in zip(windows, outputs, strict=True):
        last = len(window.input_ids) - 1
        previous = None
        for position, word in enumerate(window.word_ids):
            # A window that begins inside a word holds only its later sub-tokens: their starts are further on.
            is_first_piece = (
                word is not None and word != previous and window.offsets[position][0] == first_starts[word]
            )
            previous = word
            if not is_first_piece:
                continue
            centrality = min(position, last - position)
            if word not in best or centrality > best[word][0]:
                best[word] = (centrality, labels[tags[position]], scores[position])
    return [(*words[word], tag, score) for word, (_, tag, score) in sorted(best.items())]


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
