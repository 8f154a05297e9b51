"""Encoders that ship their own modelling code: building their config and model from that code, only with the
caller's consent (an EncoderCode), and saving the code beside a model so that the folder reloads on its own.

Like modeling.py, this file imports only transformers, so that it is published beside it as remote code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.dynamic_module_utils import custom_object_save, get_class_from_dynamic_module

OWN_CODE_CLASSES = ("AutoConfig", "AutoModel")
"""The `auto_map` entries that mean an encoder's config or model class comes from its own code."""


@dataclass(frozen=True)
class EncoderCode:
    """Where an encoder's own modelling code lives; giving one is the caller's consent to run that code."""

    location: str
    """A local folder or a Hub id holding the `.py` files its config's `auto_map` names."""
    revision: str | None = None
    """The Hub revision of that code (pin it: an unpinned id runs whatever code is newest)."""


def own_code_classes(encoder_settings: Mapping[str, Any]) -> dict[str, str]:
    """The encoder's own classes (`AutoConfig`/`AutoModel` → `module.Class`); empty for a built-in encoder."""
    auto_map = encoder_settings.get("auto_map") or {}
    return {name: auto_map[name] for name in OWN_CODE_CLASSES if name in auto_map}


def encoder_config(encoder_settings: Mapping[str, Any], code: EncoderCode | None) -> PretrainedConfig:
    """The encoder's config from its saved settings; an encoder with its own code needs `code`."""
    settings = dict(encoder_settings)
    model_type = settings.pop("model_type")
    auto_map = own_code_classes(encoder_settings)
    if not auto_map:
        return AutoConfig.for_model(model_type, **settings)
    if code is None:
        raise ValueError(
            f"the encoder (model type '{model_type}') comes with its own modelling code, which runs only with "
            "trust_remote_code=True"
        )
    if "AutoConfig" not in auto_map:
        return AutoConfig.for_model(model_type, **settings)
    # AutoConfig.for_model knows only built-in model types: a custom one's class comes from its code.
    config_class = get_class_from_dynamic_module(auto_map["AutoConfig"], code.location, revision=code.revision)
    return config_class(**settings)


def build_encoder(config: PretrainedConfig, auto_map: Mapping[str, str], code: EncoderCode | None) -> PreTrainedModel:
    """A freshly initialised encoder; one with its own code is built from `code`."""
    model_class_ref = auto_map.get("AutoModel")
    if code is None or model_class_ref is None:
        return AutoModel.from_config(config)
    # Not AutoModel.from_config(trust_remote_code=True): it reads the code at the config's name_or_path without
    # a revision, and fails on `code_revision` once the class is registered. `_from_config` is what it calls.
    model_class = get_class_from_dynamic_module(model_class_ref, code.location, revision=code.revision)
    return model_class._from_config(config)


def save_encoder_code(encoder: PreTrainedModel, auto_map: Mapping[str, str], directory: Any) -> None:
    """Copy the modules defining the encoder's own classes (and those they import relatively) into `directory`."""
    for name, part in (("AutoConfig", encoder.config), ("AutoModel", encoder)):
        if name in auto_map:
            custom_object_save(part, directory)
