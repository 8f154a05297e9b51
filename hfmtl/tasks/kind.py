"""The `TaskKind` protocol: everything that differs between kinds of task, owned by one object per kind.

Data (`label_values`, `make_example`, `tokenize`), evaluation (`eval_set`, `batch_predictions`, `score`), serving
(`window_outputs`, `answer`) and presentation (`main_metric`, `pipeline_tag`, `answer_shape`, `figure`) all
dispatch through the kind named in a task's config; no module outside `hfmtl/tasks/` names a kind. The heads and
their losses live in `heads.HEAD_TYPES` (keyed by the kind's name), because `modeling.py` and `heads.py` must stay
publishable as remote code without this package.

Nothing here imports torch, transformers or evaluate at import time: loading a config reads `TASK_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hfmtl.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

    from hfmtl.config.run_config import TaskConfig
    from hfmtl.model.modeling import TaskSpec


@dataclass(frozen=True)
class EvalSet:
    """One task's rows to score, in input order."""

    task: str
    kind: str
    rows: list[dict[str, Any]]
    """Tokenized rows: `input_ids`, `labels`, the row's `index`, and what the kind adds (NER: `label_words`)."""
    gold: list[Any]
    """The gold answer per row, as `make_example` stored it (a label id, a float, a list...)."""
    inputs: list[Any]
    """The text (or list of words) per row, for the predictions file."""


@dataclass(frozen=True)
class Scored:
    """A task's metrics and one prediction record per row, in input order."""

    metrics: dict[str, Any]
    records: list[dict[str, Any]]


class TaskKind(Protocol):
    """What a kind of task must provide. `hfmtl/tasks/__init__.py` lists the steps to add one."""

    name: str
    """The `kind:` of a task config, and the key of its head in `heads.HEAD_TYPES`."""
    has_label_set: bool
    """Whether the task names its labels (inferred from the training rows when the config does not)."""
    main_metric: str
    """The metric that stands for the task: in logs, the aggregate, best-model choice and the model card."""
    pipeline_tag: str
    """The Hub task type of the model card's eval result."""
    answer_shape: str
    """What the pipeline answers for a task of this kind, for the model card."""
    default_label_column: str
    """The label column when neither the config nor a run config names one (what hfmtl's readers produce)."""
    per_text: bool
    """One answer per text (True), or one per word (False). Only per-text tasks can share joint batches."""
    breakdown: str | None
    """The metric holding per-label precision/recall/F1/support, shown as a table in reports (None: no such)."""
    metric_feature: tuple[str, bool]
    """The `evaluate` feature of a prediction: a value type, and whether it is a sequence of them."""
    softmax_loss: bool
    """Whether the head's loss is a cross-entropy over the labels, so `label_smoothing` and `class_weights` apply."""

    def check_config(self, task: TaskConfig, where: str) -> None:
        """Refuse settings the kind cannot use (raise ConfigError naming `where`, the task's dotted key)."""

    def check_spec(self, spec: TaskSpec) -> str | None:
        """Why a saved model's task spec (labels, thresholds...) does not fit this kind, or None when it does."""

    def label_values(self, record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
        """The raw label values of one row, to infer the label set from."""

    def make_example(
        self, record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str] | None, where: str
    ) -> dict[str, Any]:
        """Check one raw row and turn it into a stored example (DataError naming `where` if it cannot be used)."""

    def tokenize(self, examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
        """Batched `Dataset.map` function: `input_ids` and `labels` (and anything evaluation reads)."""

    def eval_set(self, task: str, dataset: Dataset) -> EvalSet:
        """The rows to score from a tokenized split."""

    def batch_predictions(
        self, logits: torch.Tensor, batch: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """One raw, picklable prediction per row of a batch (gathered across processes, then scored)."""

    def score(self, eval_set: EvalSet, predicted: list[Any], spec: TaskSpec) -> Scored:
        """Metrics and prediction records from the raw predictions, in input order."""

    def window_outputs(self, logits: torch.Tensor, lengths: Sequence[int]) -> list[Any]:
        """Pipeline: each window's output in answer space (probabilities, a value...), on the CPU."""

    def answer(
        self,
        text: str,
        words: Sequence[tuple[int, int]],
        windows: Sequence[Any],
        outputs: list[Any],
        spec: TaskSpec,
    ) -> Any:
        """Pipeline: one text's answer from the outputs of its windows (`pipeline._Window`s, in order)."""

    def scores(self, predictions: Sequence[Any], references: Sequence[Any], label_names: Any) -> dict[str, Any]:
        """The metrics of predictions against references, as `score` prepared them (`metrics.compute_metrics`
        wraps this in an `evaluate` module)."""

    def figure(self, task: str, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
        """The report's figure for the task, as inline SVG."""

    def init_head(self, head: Any, train: Dataset) -> None:
        """Set a fresh head's starting weights from the tokenized training split, if the kind has a reason to."""


def read_texts(record: Mapping[str, Any], task: TaskConfig, where: str) -> dict[str, str]:
    """A row's text, and its second text when the task reads pairs (`text_pair_column`)."""
    from hfmtl.tasks.rows import read_text

    texts = {"text": read_text(record, task.text_column, where)}
    if task.text_pair_column is not None:
        texts["text_pair"] = read_text(record, task.text_pair_column, where)
    return texts


def tokenize_texts(examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    """Token ids of each text, or of each pair (then with token_type_ids where the tokenizer makes them, and
    `longest_first` truncation, which keeps some of both texts)."""
    if "text_pair" not in examples:
        return {"input_ids": tokenizer(examples["text"], truncation=True, max_length=max_length)["input_ids"]}
    encoded = tokenizer(examples["text"], examples["text_pair"], truncation="longest_first", max_length=max_length)
    return {name: encoded[name] for name in ("input_ids", "token_type_ids") if name in encoded}


def text_inputs(dataset: Dataset) -> list[Any]:
    """Each row's input as the predictions file shows it: the text, or `[text, text_pair]`."""
    if "text_pair" not in dataset.column_names:
        return dataset["text"]
    return [list(pair) for pair in zip(dataset["text"], dataset["text_pair"], strict=True)]


def refuse_threshold(task: TaskConfig, where: str) -> None:
    """Only multi-label tasks decide by threshold: anywhere else a threshold would be silently ignored."""
    if task.threshold is not None:
        raise ConfigError(
            f"'{where}.threshold' only applies to multi_label_classification tasks, not {task.kind}; remove it"
        )


class TextKind:
    """Shared behaviour of the kinds that answer once per text (classification, regression, multi-label):
    a text column in, one label per row, windows averaged in the pipeline."""

    def init_head(self, head: Any, train: Dataset) -> None:
        """The head's random initialisation is kept."""

    has_label_set = True
    default_label_column = "label"
    per_text = True

    def check_config(self, task: TaskConfig, where: str) -> None:
        if task.text_pair_column is not None and task.text_pair_column == task.text_column:
            raise ConfigError(f"'{where}.text_pair_column' must name another column than text_column")
        if task.labels is not None and not self.has_label_set:
            raise ConfigError(f"'{where}.labels' is set, but a {self.name} task has no labels")
        refuse_threshold(task, where)

    def check_spec(self, spec: TaskSpec) -> str | None:
        labels = spec.labels
        if not self.has_label_set:
            return None if labels is None else f"is a {self.name} task but lists labels {list(labels)}"
        if labels is None or len(set(labels)) != len(labels) or len(labels) < 2:
            return f"needs at least two distinct label names, got {labels}"
        return None

    def label_values(self, record: Mapping[str, Any], task: TaskConfig, where: str) -> list[Any]:
        from hfmtl.tasks.rows import read_column

        return [read_column(record, task.label_column, where)] if self.has_label_set else []

    def make_example(
        self, record: Mapping[str, Any], task: TaskConfig, labels: Sequence[str] | None, where: str
    ) -> dict[str, Any]:
        """`{"text": str, "label": ...}` (and `"text_pair"` for a pair task), the label read by `read_label`."""
        from hfmtl.tasks.rows import read_column

        return {
            **read_texts(record, task, where),
            "label": self.read_label(read_column(record, task.label_column, where), task, labels, where),
        }

    def read_label(self, value: Any, task: TaskConfig, labels: Sequence[str] | None, where: str) -> Any:
        """One row's label value, checked, as stored (a label id, a float...)."""
        raise NotImplementedError

    def tokenize(self, examples: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
        return {**tokenize_texts(examples, tokenizer, max_length), "labels": examples["label"]}

    def eval_set(self, task: str, dataset: Dataset) -> EvalSet:
        columns = [name for name in ("input_ids", "token_type_ids", "labels") if name in dataset.column_names]
        rows = [
            {**dict(zip(columns, values, strict=True)), "index": index}
            for index, values in enumerate(zip(*(dataset[name] for name in columns), strict=True))
        ]
        return EvalSet(task=task, kind=self.name, rows=rows, gold=dataset["label"], inputs=text_inputs(dataset))

    def window_outputs(self, logits: torch.Tensor, lengths: Sequence[int]) -> list[Any]:
        values = self.probabilities(logits.float()).cpu()
        return list(values)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits → the answer space the windows of a text are averaged in."""
        raise NotImplementedError

    def answer(
        self,
        text: str,
        words: Sequence[tuple[int, int]],
        windows: Sequence[Any],
        outputs: list[Any],
        spec: TaskSpec,
    ) -> Any:
        import torch

        return self.decode(torch.stack(outputs).mean(0), spec)

    def decode(self, values: torch.Tensor, spec: TaskSpec) -> Any:
        """A text's (window-averaged) output → the user-facing answer."""
        raise NotImplementedError
