"""NER on plain text vs NER on CoNLL words: how much entity F1 the pipeline loses by reading raw text.

    python scripts/benchmark_ner_raw.py MODEL_DIR --config configs/quickstart.yaml [--limit N]

The validation sentences of the config's NER task are written back as plain text by `detokenize` (the way a
person writes them), then `MultiTaskPipeline` reads that text and its entity spans are matched exactly
(start, end, type) against the gold spans. `evaluate_f1` is what `hfmtl evaluate` reports on the same
sentences; `word_split_agreement` is how often `split_words` of the text gives back exactly the CoNLL words.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from hfmtl.config.run_config import RunConfig, TaskConfig, load_config
from hfmtl.data.collate import Collator
from hfmtl.data.loading import load_task_data, tokenize_task
from hfmtl.errors import ConfigError
from hfmtl.evaluation.scoring import evaluate_tasks, make_eval_set
from hfmtl.model.folder import load_model_dir
from hfmtl.serve.pipeline import MultiTaskPipeline
from hfmtl.serve.words import split_words

NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "..."})
"""Words written right after the previous one (so are the clitics of `CLITICS`)."""
CLITICS = frozenset({"'s", "'re", "'ve", "'ll", "'d", "'m", "n't"})
"""English clitics, compared in lowercase (`'S` too)."""
NO_SPACE_AFTER = frozenset({"(", "[", "{", "$"})
"""Words the next one is written right after (also any currency word ending in `$`: `C$`, `US$`)."""

Span = tuple[int, int, str]
"""An entity: (start, end, type)."""


def detokenize(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """CoNLL words as plain text, and each word's (start, end) in it.

    One space between words, except: none before `, . ; : ! ? ) ] } % ...` and the clitics `'s 're 've 'll
    'd 'm n't`; none after `( [ { $` or a currency like `C$`; straight double quotes alternate open (no space
    after) and close (no space before); a lone `'` after a word ending in `s` is a possessive (no space before).
    """
    text, spans = "", []
    is_open_quote, glue_next = False, True
    for word in words:
        is_quote = word == '"'
        if is_quote:
            is_open_quote = not is_open_quote
        glue_previous = (
            word in NO_SPACE_BEFORE
            or word.lower() in CLITICS
            or (is_quote and not is_open_quote)
            or (word == "'" and text[-1:] in ("s", "S"))
        )
        if text and not glue_next and not glue_previous:
            text += " "
        spans.append((len(text), len(text) + len(word)))
        text += word
        glue_next = word in NO_SPACE_AFTER or word.endswith("$") or (is_quote and is_open_quote)
    return text, spans


def bio_spans(tags: Sequence[str], word_spans: Sequence[tuple[int, int]]) -> set[Span]:
    """Entity character spans from BIO tags; an `I-X` that does not continue an X entity starts one (conlleval)."""
    entities: list[list[Any]] = []
    previous = "O"
    for tag, (start, end) in zip(tags, word_spans, strict=True):
        prefix, _, entity_type = tag.partition("-")
        if tag == "O":
            previous = "O"
            continue
        if prefix == "I" and previous == entity_type:
            entities[-1][1] = end
        else:
            entities.append([start, end, entity_type])
        previous = entity_type
    return {(start, end, entity_type) for start, end, entity_type in entities}


def span_f1(predicted: Sequence[set[Span]], gold: Sequence[set[Span]]) -> float:
    """Micro F1 of exact (start, end, type) matches over sentences."""
    hits = sum(len(p & g) for p, g in zip(predicted, gold, strict=True))
    n_predicted, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    return 2 * hits / (n_predicted + n_gold) if n_predicted + n_gold else 0.0


def word_split_agreement(sentences: Sequence[Sequence[str]]) -> float:
    """The fraction of sentences whose detokenized text `split_words` splits back into exactly their words."""
    agreed = 0
    for words in sentences:
        text, _ = detokenize(words)
        agreed += [text[start:end] for start, end in split_words(text)] == list(words)
    return agreed / len(sentences)


def ner_raw_text(model_dir: str | Path, config: RunConfig, limit: int | None = None) -> dict[str, Any]:
    """Entity F1 of the pipeline on detokenized validation sentences vs `hfmtl evaluate`'s on their words."""
    loaded = load_model_dir(model_dir)
    task = _ner_task(config)
    labels = next(spec.labels for spec in loaded.model.config.task_specs if spec.name == task.name)
    data = load_task_data(task, config.data_dir, labels)
    if "validation" not in data.splits:
        raise ConfigError(f"task '{task.name}' has no validation split to measure on")
    examples = data.splits["validation"]
    examples = examples.select(range(min(limit, len(examples)))) if limit is not None else examples
    # Only the validation split is scored: the training rows need no tokenizing.
    only_validation = dataclasses.replace(data, splits={"validation": examples})
    validation = tokenize_task(only_validation, loaded.tokenizer, config.encoder.max_length)["validation"]

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model = loaded.model.to(accelerator.device)
    eval_sets = {task.name: make_eval_set(task.name, task.kind, validation)}
    scored = evaluate_tasks(model, eval_sets, Collator(loaded.tokenizer.pad_token_id), accelerator, 64)
    evaluate_f1 = scored[task.name].metrics["f1"]

    sentences = validation["tokens"]
    texts, gold = [], []
    for words, tag_ids in zip(sentences, validation["tags"], strict=True):
        text, word_spans = detokenize(words)
        texts.append(text)
        gold.append(bio_spans([labels[tag] for tag in tag_ids], word_spans))
    pipeline = MultiTaskPipeline(model, loaded.tokenizer, max_length=config.encoder.max_length, batch_size=64)
    answers = pipeline(texts)
    predicted = [{(e["start"], e["end"], e["entity_group"]) for e in answer[task.name]} for answer in answers]
    pipeline_f1 = span_f1(predicted, gold)
    return {
        "sentences": len(sentences),
        "pipeline_f1": pipeline_f1,
        "evaluate_f1": evaluate_f1,
        "f1_gap_points": 100 * (evaluate_f1 - pipeline_f1),
        "word_split_agreement": word_split_agreement(sentences),
    }


def _ner_task(config: RunConfig) -> TaskConfig:
    tasks = [task for task in config.tasks if task.kind == "token_classification"]
    if not tasks:
        raise ConfigError("the config has no token_classification task (kind: token_classification)")
    return tasks[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="a model folder (a run's output_dir/model)")
    parser.add_argument("--config", default="configs/quickstart.yaml", help="the run config naming the NER data")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N validation sentences")
    args = parser.parse_args()
    result = ner_raw_text(args.model_dir, load_config(args.config), args.limit)
    print(json.dumps(result, indent=2))  # noqa: T201 - the script's output


if __name__ == "__main__":
    main()
