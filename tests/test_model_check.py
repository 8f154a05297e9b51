"""A model folder is whole or refused: every tensor present with its shape, a consistent config."""

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from hfmtl.errors import ModelLoadError
from hfmtl.hub.publish import publish
from hfmtl.model.folder import load_model_dir
from hfmtl.model.modeling import MultiTaskModel


@pytest.fixture
def model_copy(trained, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    return folder


def test_a_folder_without_one_heads_tensors_is_refused_not_loaded_with_a_random_head(model_copy):
    weights = load_file(model_copy / "model.safetensors")
    save_file(
        {name: t for name, t in weights.items() if not name.startswith("heads.ner.")}, model_copy / "model.safetensors"
    )
    with pytest.raises(
        ModelLoadError, match=r"do not match its config\.json: 2 tensors missing \(heads\.ner\.out\.bias"
    ):
        load_model_dir(model_copy)
    with pytest.raises(ModelLoadError, match="2 tensors missing"):
        publish(model_copy, "me/model", dry_run=True)
    # the transformers-style entry point the README shows is no softer (it imports only transformers, so that
    # it publishes as remote code: a ValueError, as transformers raises for a folder it cannot use)
    with pytest.raises(ValueError, match=r"do not match its config\.json \(missing keys: \['heads\.ner\.out\.bias'"):
        MultiTaskModel.from_pretrained(model_copy)


def test_truncated_weights_are_refused_by_load_and_publish(model_copy):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for attempt in (lambda: load_model_dir(model_copy), lambda: publish(model_copy, "me/model", dry_run=True)):
        with pytest.raises(ModelLoadError, match=r"model\.safetensors is not a readable safetensors file"):
            attempt()


def test_a_label_set_that_does_not_fit_the_head_is_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    sentiment = next(task for task in config["tasks"] if task["name"] == "sentiment")
    sentiment["labels"] = [*sentiment["labels"], "neutral"]
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelLoadError, match=r"tensors of the wrong shape \(heads\.sentiment\.out\.bias \[2\] instead of \[3\]"
    ):
        load_model_dir(model_copy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["tasks"][0].update(kind="ranking"), r"has kind 'ranking'; expected one of"),
        (lambda c: c["tasks"][0].update(labels=["only"]), r"needs at least two distinct label names"),
        (lambda c: c.update(tasks=[]), r"'tasks' must list the model's tasks"),
        (lambda c: c.update(tasks=["sentiment"]), r"the task list is malformed"),
        (lambda c: c["encoder"].pop("model_type"), r"'encoder' must hold the encoder's config"),
        (lambda c: c["encoder"].update(model_type="nosuch"), r"the encoder \(model_type 'nosuch'\) cannot be built"),
    ],
)
def test_an_inconsistent_config_is_refused(model_copy, change, message):
    config = json.loads((model_copy / "config.json").read_text())
    change(config)
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=message):
        load_model_dir(model_copy)


def test_a_damaged_tokenizer_is_a_clear_error(model_copy):
    tokenizer = model_copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text()[:100])
    with pytest.raises(ModelLoadError, match=r"the tokenizer files in '.*model' cannot be read"):
        load_model_dir(model_copy)


def test_weights_damaged_into_nan_are_refused_not_answered(model_copy):
    weights = load_file(model_copy / "model.safetensors")
    weights["heads.sentiment.out.weight"][0, 0] = float("nan")  # bytes overwritten inside the file: shapes intact
    save_file(weights, model_copy / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"hold NaN or infinite values \(heads\.sentiment\.out\.weight\)"):
        load_model_dir(model_copy)


def test_a_tokenizer_without_its_config_is_named(model_copy):
    (model_copy / "tokenizer_config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"has no padding token; its tokenizer_config\.json is missing"):
        load_model_dir(model_copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[]", r"config\.json holds a JSON list, not an object of settings"),
        (b'{"model_type": "hfmtl", "name": "caf\xe9"}', r"config\.json is not UTF-8 text \(byte 36\)"),
    ],
)
def test_a_foreign_config_json_is_a_clear_error(model_copy, content, message):
    (model_copy / "config.json").write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        load_model_dir(model_copy)
