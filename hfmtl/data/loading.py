"""Loading a task's splits: read rows (local files or a Hub dataset), check them against the task, settle
its label set, and tokenize. Everything the user can get wrong is reported with the file and line."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from hfmtl.config import DataConfig, RunConfig, TaskConfig
from hfmtl.data.readers import Row, detect_format, raise_problems, read_rows
from hfmtl.errors import DataError
from hfmtl.tasks import TASK_KINDS


@dataclass(frozen=True)
class TaskData:
    """One task's checked examples per split and its label names (None for regression)."""

    task: TaskConfig
    labels: tuple[str, ...] | None
    splits: dict[str, Dataset]


def load_all_tasks(
    config: RunConfig, labels: Mapping[str, tuple[str, ...] | None] | None = None
) -> dict[str, TaskData]:
    """Every task's data. `labels` (e.g. from a trained model) overrides the config and inference."""
    return {task.name: load_task_data(task, config.data_dir, (labels or {}).get(task.name)) for task in config.tasks}


def load_task_data(task: TaskConfig, data_dir: str | Path, labels: tuple[str, ...] | None = None) -> TaskData:
    """Read and check a task's train (and validation) split.

    Labels come from `labels` (e.g. a trained model's), else the config, else the training split.
    """
    kind = TASK_KINDS[task.kind]
    labels = labels if labels is not None else task.labels
    split_names = {"train": task.data.train, "validation": task.data.validation}
    limits = {"train": task.data.max_train_rows, "validation": task.data.max_validation_rows}
    rows, declared_names = {}, {}
    for split, name in split_names.items():
        if name is None:
            continue
        split_rows, class_names = _rows(task.data, name, data_dir)
        rows[split] = list(itertools.islice(split_rows, limits[split]))
        if not rows[split]:
            raise DataError(
                f"{_source(task.data, name, data_dir)}: the {split} split of task '{task.name}' has no rows"
            )
        declared_names = declared_names or class_names
    if kind.HAS_LABEL_SET and labels is None:
        # A Hub dataset's ClassLabel names are the full label set, even labels the rows happen not to use.
        hub_names = declared_names.get(task.label_column)
        labels = tuple(hub_names) if hub_names else _infer_labels(task, rows["train"])
    splits = {split: _examples(task, split_rows, labels) for split, split_rows in rows.items()}
    return TaskData(task=task, labels=labels if kind.HAS_LABEL_SET else None, splits=splits)


def load_split(
    task: TaskConfig, name: str, data_dir: str | Path, labels: tuple[str, ...] | None
) -> tuple[Dataset, str]:
    """One split (a file, or a split name with a Hub dataset) checked against a known label set.

    Returns the examples and where they came from.
    """
    rows, _ = _rows(task.data, name, data_dir)
    rows = list(rows)
    source = _source(task.data, name, data_dir)
    if not rows:
        raise DataError(f"{source}: no rows for task '{task.name}'")
    return _examples(task, rows, labels), source


def _examples(task: TaskConfig, rows: list[Row], labels: tuple[str, ...] | None) -> Dataset:
    """Check every row; report all the rows that cannot be used at once, not just the first."""
    kind = TASK_KINDS[task.kind]
    examples, problems = [], []
    for where, record in rows:
        try:
            examples.append(kind.make_example(record, task, labels, where))
        except DataError as error:
            problems.append(str(error))
    raise_problems(problems, f"rows of task '{task.name}' cannot be used")
    return Dataset.from_list(examples)


def tokenize_task(data: TaskData, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, Dataset]:
    """Each split with `input_ids` and `labels` added (dynamic padding happens later, per batch)."""
    return {
        split: tokenize_split(data.task, split, dataset, tokenizer, max_length)
        for split, dataset in data.splits.items()
    }


def tokenize_split(
    task: TaskConfig, split: str, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Dataset:
    """One split's examples with `input_ids` and `labels` added."""
    return dataset.map(
        TASK_KINDS[task.kind].tokenize,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
        desc=f"Tokenizing {task.name}/{split}",
        # The rows live in memory, so nothing is cached: a fixed fingerprint only skips hashing the tokenizer.
        new_fingerprint=f"{task.name}-{split}-{max_length}",
    )


def resolve_data_path(data_dir: str | Path, name: str) -> Path:
    """A task file path: absolute or `~` paths as given, relative ones under `data_dir`."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(data_dir).expanduser() / path


def _source(data: DataConfig, name: str, data_dir: str | Path) -> str:
    return f"{data.hub_id}[{name}]" if data.hub_id else str(resolve_data_path(data_dir, name))


def _rows(data: DataConfig, name: str, data_dir: str | Path) -> tuple[Iterator[Row], dict[str, list[str]]]:
    """A split's rows, and the label names a Hub dataset declares per column (none for local files)."""
    if data.hub_id:
        return _hub_rows(data.hub_id, data.hub_subset, name)
    path = resolve_data_path(data_dir, name)
    if not path.is_file():
        raise DataError(f"data file not found: {path} (relative paths resolve against data_dir '{data_dir}')")
    rows = read_rows(path, detect_format(path, data.format), quoting=data.quoting, multiline=data.multiline)
    return iter(rows), {}


def _hub_rows(hub_id: str, subset: str | None, split: str) -> tuple[Iterator[Row], dict[str, list[str]]]:
    import datasets  # the Hub loader is only needed for Hub datasets

    try:
        dataset = datasets.load_dataset(hub_id, subset, split=split)
    except Exception as error:  # noqa: BLE001 - the Hub raises many types; all mean "cannot load this"
        raise DataError(f"could not load split '{split}' of Hub dataset '{hub_id}': {error}") from None
    names = _class_label_names(dataset.features)

    def rows() -> Iterator[Row]:
        for index, record in enumerate(dataset):
            for column, column_names in names.items():  # ClassLabel ids → their names, as in local files
                value = record[column]
                record[column] = [column_names[v] for v in value] if isinstance(value, list) else column_names[value]
            yield f"{hub_id}[{split}] row {index + 1}", record

    return rows(), names


def _class_label_names(features: Any) -> dict[str, list[str]]:
    """Columns holding ClassLabel ids (or lists of them, like NER tags) and their label names."""
    from datasets import ClassLabel

    names = {}
    for column, feature in features.items():
        inner = getattr(feature, "feature", feature)  # a Sequence/List of ClassLabel, or a ClassLabel
        if isinstance(inner, ClassLabel):
            names[column] = inner.names
    return names


def _infer_labels(task: TaskConfig, rows: list[Row]) -> tuple[str, ...]:
    from hfmtl.tasks.labels import infer_labels

    kind = TASK_KINDS[task.kind]
    values: list[Any] = []
    for where, record in rows:
        values.extend(kind.label_values(record, task, where))
    labels = infer_labels(values)
    if len(labels) < 2:
        raise DataError(f"task '{task.name}': the training split has fewer than two distinct labels ({list(labels)})")
    return labels
