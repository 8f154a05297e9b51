"""Loading a task's splits: read rows (local files or a Hub dataset), check them against the task, settle
its label set, and tokenize. Everything the user can get wrong is reported with the file and line."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from hfmtl.atomic import write_json_atomic
from hfmtl.config.run_config import DataConfig, RunConfig, TaskConfig
from hfmtl.data.cache import (
    WRITER_BATCH_ROWS,
    cache_root,
    cache_writes,
    cached_dataset,
    entry_key,
    file_digest,
    read_json,
    seal,
    tokenizer_digest,
    write_dataset,
)
from hfmtl.data.readers import Row, detect_format, iter_rows, raise_problems
from hfmtl.errors import DataError
from hfmtl.tasks import TASK_KINDS


@dataclass(frozen=True)
class TaskData:
    """One task's checked examples per split and its label names (None for regression)."""

    task: TaskConfig
    labels: tuple[str, ...] | None
    splits: dict[str, Dataset]
    contents: dict[str, str]
    """Per split, a hash of its source's content and of how it is parsed: a resumed run checks its training
    data is still what the checkpoint was trained on."""


def load_all_tasks(
    config: RunConfig, labels: Mapping[str, tuple[str, ...] | None] | None = None
) -> dict[str, TaskData]:
    """Every task's data. `labels` (e.g. from a trained model) overrides the config and inference."""
    return {task.name: load_task_data(task, config.data_dir, (labels or {}).get(task.name)) for task in config.tasks}


def load_task_data(task: TaskConfig, data_dir: str | Path, labels: tuple[str, ...] | None = None) -> TaskData:
    """Read and check a task's train (and validation) split, or take them from the cache.

    Labels come from `labels` (e.g. a trained model's), else the config, else the training split.
    """
    kind = TASK_KINDS[task.kind]
    labels = labels if labels is not None else task.labels
    split_names = {"train": task.data.train, "validation": task.data.validation}
    limits = {"train": task.data.max_train_rows, "validation": task.data.max_validation_rows}
    sources = {split: _split_source(task.data, name, data_dir) for split, name in split_names.items() if name}
    if kind.has_label_set and labels is None:
        # A Hub dataset's ClassLabel names are the full label set, even labels the rows happen not to use.
        hub_names = sources["train"].class_names.get(task.label_column)
        labels = tuple(hub_names) if hub_names else _inferred_labels(task, sources["train"], limits["train"])
    splits = {
        split: _examples(task, source, labels, limits[split], f"the {split} split of task '{task.name}' has no rows")
        for split, source in sources.items()
    }
    contents = {split: source.key for split, source in sources.items()}
    return TaskData(task=task, labels=labels if kind.has_label_set else None, splits=splits, contents=contents)


def load_split(
    task: TaskConfig, name: str, data_dir: str | Path, labels: tuple[str, ...] | None
) -> tuple[Dataset, str]:
    """One split (a file, or a split name with a Hub dataset) checked against a known label set.

    Returns the examples and where they came from.
    """
    source = _split_source(task.data, name, data_dir)
    return _examples(task, source, labels, None, f"no rows for task '{task.name}'"), source.name


@dataclass(frozen=True)
class _Source:
    """Where a split's rows come from: its name in errors, a hash of its content (and of how it is parsed),
    its rows (read afresh on every call, up to a limit) and the label names a Hub dataset declares."""

    name: str
    key: str
    rows: Callable[[int | None], Iterator[Row]]
    class_names: dict[str, list[str]]


def _examples(
    task: TaskConfig, source: _Source, labels: tuple[str, ...] | None, limit: int | None, empty: str
) -> Dataset:
    """The split's checked examples as a memory-mapped Arrow file, written to the cache on the first run.
    Every row that cannot be used is reported at once, not just the first."""
    kind = TASK_KINDS[task.kind]
    columns = (task.kind, task.text_column, task.text_pair_column, task.tokens_column, task.label_column)
    path = cache_root() / entry_key("examples", source.key, limit, columns, labels) / "examples.arrow"
    examples = cached_dataset(path)
    if examples is None:
        problems: list[str] = []

        def checked() -> Iterator[dict[str, Any]]:
            for where, record in source.rows(limit):
                try:
                    yield kind.make_example(record, task, labels, where)
                except DataError as error:
                    problems.append(str(error))
            raise_problems(problems, f"rows of task '{task.name}' cannot be used")  # before the file is kept

        with cache_writes(path.parent):
            examples = write_dataset(path, checked())
    if len(examples) == 0:
        raise DataError(f"{source.name}: {empty}")
    return examples


def tokenize_task(data: TaskData, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, Dataset]:
    """Each split with `input_ids` and `labels` added (dynamic padding happens later, per batch)."""
    return {
        split: tokenize_split(data.task, split, dataset, tokenizer, max_length)
        for split, dataset in data.splits.items()
    }


def tokenize_split(
    task: TaskConfig, split: str, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Dataset:
    """One split's examples with `input_ids` and `labels` added, cut at the task's own `max_length` when it
    sets one, else at `max_length` (the encoder's). Examples from the cache are tokenized into their cache
    folder once per tokenizer and length; examples built in memory are not cached."""
    max_length = task.max_length or max_length
    options: dict[str, Any] = {
        "batched": True,
        "fn_kwargs": {"tokenizer": tokenizer, "max_length": max_length},
        "desc": f"Tokenizing {task.name}/{split}",
    }
    if not dataset.cache_files:
        # A fixed fingerprint only skips hashing the tokenizer: rows in memory are never cached.
        return dataset.map(
            TASK_KINDS[task.kind].tokenize, new_fingerprint=f"{task.name}-{split}-{max_length}", **options
        )
    folder = Path(dataset.cache_files[0]["filename"]).parent
    # The fingerprint names the rows as selected (a `select` changes it); it is stable across runs.
    key = entry_key("tokens", dataset._fingerprint, tokenizer_digest(tokenizer), max_length)
    cache_file = folder / f"tokens-{key}.arrow"
    tokenized = cached_dataset(cache_file)
    if tokenized is not None:
        return tokenized
    with cache_writes(folder):
        tokenized = dataset.map(
            TASK_KINDS[task.kind].tokenize,
            cache_file_name=str(cache_file),
            batch_size=WRITER_BATCH_ROWS,  # in batched mode each batch the function returns is one record batch
            writer_batch_size=WRITER_BATCH_ROWS,
            load_from_cache_file=False,  # a file there could not be read: write it anew
            new_fingerprint=key,
            **options,
        )
        return seal(cache_file, tokenized)


def resolve_data_path(data_dir: str | Path, name: str) -> Path:
    """A task file path: absolute or `~` paths as given, relative ones under `data_dir`."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(data_dir).expanduser() / path


def _split_source(data: DataConfig, name: str, data_dir: str | Path) -> _Source:
    if data.hub_id:
        return _hub_source(data.hub_id, data.hub_subset, name)
    path = resolve_data_path(data_dir, name)
    if not path.is_file():
        from hfmtl.data.fetch import HUB_FILES  # fetch imports this module

        hint = (
            "; run 'hfmtl data CONFIG --fetch' to download it from the Hugging Face Hub" if name in HUB_FILES else ""
        )
        raise DataError(f"data file not found: {path} (relative paths resolve against data_dir '{data_dir}'){hint}")
    file_format = detect_format(path, data.format)

    digest = file_digest(path)

    def rows(limit: int | None) -> Iterator[Row]:
        yield from iter_rows(path, file_format, quoting=data.quoting, multiline=data.multiline, limit=limit)
        # The cache entry is named by the digest taken before reading: rows of a file rewritten meanwhile
        # would be kept under the old content's name, and read back for it later.
        if file_digest(path) != digest:
            raise DataError(f"{path} changed while it was being read; run again once it is fully written")

    key = entry_key("file", digest, file_format, data.quoting, data.multiline)
    return _Source(name=str(path), key=key, rows=rows, class_names={})


def _hub_source(hub_id: str, subset: str | None, split: str) -> _Source:
    import datasets  # the Hub loader is only needed for Hub datasets

    try:
        dataset = datasets.load_dataset(hub_id, subset, split=split)
    except Exception as error:  # noqa: BLE001 - the Hub raises many types; all mean "cannot load this"
        raise DataError(f"could not load split '{split}' of Hub dataset '{hub_id}': {error}") from None
    names = _class_label_names(dataset.features)

    def rows(limit: int | None) -> Iterator[Row]:
        for index, record in enumerate(itertools.islice(dataset, limit)):
            where = f"{hub_id}[{split}] row {index + 1}"
            for column, column_names in names.items():  # ClassLabel ids → their names, as in local files
                value = record[column]
                record[column] = (
                    [_class_name(v, column_names, column, where) for v in value]
                    if isinstance(value, list)
                    else _class_name(value, column_names, column, where)
                )
            yield where, record

    # load_dataset's fingerprint names the dataset's content as it downloaded and prepared it
    key = entry_key("hub", hub_id, subset, split, dataset._fingerprint)
    return _Source(name=f"{hub_id}[{split}]", key=key, rows=rows, class_names=names)


def _class_name(value: int, names: list[str], column: str, where: str) -> str:
    """The name of a ClassLabel id. `-1` is how `datasets` marks a row with no label (GLUE's test splits):
    refused, never read from the end of the list."""
    if not 0 <= value < len(names):
        raise DataError(
            f"{where}: column '{column}' holds label id {value}, not one of its {len(names)} classes "
            f"{names[:10]}" + (" (-1 means the row has no label, as in a test split)" if value == -1 else "")
        )
    return names[value]


def _class_label_names(features: Any) -> dict[str, list[str]]:
    """Columns holding ClassLabel ids (or lists of them, like NER tags) and their label names."""
    from datasets import ClassLabel

    names = {}
    for column, feature in features.items():
        inner = getattr(feature, "feature", feature)  # a Sequence/List of ClassLabel, or a ClassLabel
        if isinstance(inner, ClassLabel):
            names[column] = inner.names
    return names


def _inferred_labels(task: TaskConfig, train: _Source, limit: int | None) -> tuple[str, ...]:
    """The label set of the training rows (sorted), cached with the rows' hash."""
    from hfmtl.tasks.labels import infer_labels, label_text

    path = cache_root() / entry_key("labels", train.key, limit, task.kind, task.label_column) / "labels.json"
    cached = read_json(path)
    if isinstance(cached, list):
        return tuple(cached)
    kind = TASK_KINDS[task.kind]
    values: list[str] = []
    rows = 0
    for where, record in train.rows(limit):
        rows += 1
        values.extend(label_text(value, where) for value in kind.label_values(record, task, where))
    if not rows:
        raise DataError(f"{train.name}: the train split of task '{task.name}' has no rows")
    if not values:
        raise DataError(
            f"{train.name}: no row of the train split of task '{task.name}' has a label, so there is no label "
            "set to infer; list the names under the task's `labels:`"
        )
    try:
        labels = infer_labels(values)
    except DataError as error:
        raise DataError(f"{train.name}: task '{task.name}': {error}") from None
    if len(labels) < 2:
        raise DataError(f"task '{task.name}': the training split has fewer than two distinct labels ({list(labels)})")
    with cache_writes(path.parent):
        write_json_atomic(path, list(labels))
    return labels
