import pytest
import torch
import torch.nn.functional as F

from hfmtl.model.encoder import build_model
from hfmtl.model.modeling import MultiTaskModel, register_auto_classes

LABELS = {
    "sentiment": ("negative", "positive"),
    "ner": ("O", "B-PER", "I-PER", "B-LOC"),
    "intensity": None,
    "emotions": ("anger", "joy"),
    "similarity": None,
}


@pytest.fixture(scope="module")
def model(tiny_config):
    torch.manual_seed(0)
    return build_model(tiny_config, LABELS).eval()


@pytest.fixture(scope="module")
def batch():
    input_ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}


@pytest.mark.parametrize(
    ("task", "shape"),
    [("sentiment", (2, 2)), ("ner", (2, 5, 4)), ("intensity", (2,))],
    ids=["classification", "token_classification", "regression"],
)
def test_head_output_shapes(model, batch, task, shape):
    assert model(task, **batch).logits.shape == shape


def test_one_pass_gives_every_head_the_same_answer_as_its_own_forward(model, batch):
    every = model.forward_all(**batch)
    assert set(every) == {"sentiment", "ner", "intensity", "emotions", "similarity"}
    for task, logits in every.items():
        assert torch.allclose(logits, model(task, **batch).logits, atol=1e-6)


def test_forward_all_runs_the_encoder_once(model, batch):
    calls = []
    handle = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    model.forward_all(**batch)
    handle.remove()
    assert len(calls) == 1


@torch.no_grad()
def test_losses_match_their_definitions(model, batch):
    out = model("sentiment", **batch, labels=torch.tensor([1, 0]))
    assert out.loss == pytest.approx(F.cross_entropy(out.logits, torch.tensor([1, 0])).item())
    out = model("intensity", **batch, labels=torch.tensor([0.2, 0.9]))
    assert out.loss == pytest.approx(((out.logits - torch.tensor([0.2, 0.9])) ** 2).mean().item())
    tags = torch.tensor([[-100, 1, 2, 0, -100], [-100, 3, -100, -100, -100]])
    out = model("ner", **batch, labels=tags)
    kept = tags != -100
    assert out.loss == pytest.approx(F.cross_entropy(out.logits[kept], tags[kept]).item())


def test_unknown_task_is_named(model, batch):
    with pytest.raises(KeyError, match="no task 'pos'; it has: sentiment, ner, intensity"):
        model("pos", **batch)


def test_save_and_load_give_identical_outputs_and_specs(model, batch, tmp_path):
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = MultiTaskModel.from_pretrained(tmp_path).eval()
    assert loaded.config.task_specs == model.config.task_specs
    assert loaded.config.task_specs[1].labels == LABELS["ner"]
    assert loaded.config.encoder_name_or_path == "tests/assets/tiny/encoder"
    before, after = model.forward_all(**batch), loaded.forward_all(**batch)
    for task in before:
        assert torch.equal(before[task], after[task]), task


def test_auto_classes_open_a_saved_model(model, tmp_path):
    from transformers import AutoConfig, AutoModel

    model.save_pretrained(tmp_path)
    register_auto_classes()
    assert type(AutoConfig.from_pretrained(tmp_path)).__name__ == "MultiTaskConfig"
    assert isinstance(AutoModel.from_pretrained(tmp_path), MultiTaskModel)


def test_encoder_weights_come_from_the_pretrained_encoder(model):
    from safetensors.torch import load_file

    pretrained = load_file("tests/assets/tiny/encoder/model.safetensors")
    pretrained = {name: tensor for name, tensor in pretrained.items() if not name.startswith("pooler.")}
    assert set(model.encoder.state_dict()) == set(pretrained)  # no pooler: heads pool for themselves
    for name, tensor in pretrained.items():
        assert torch.equal(model.encoder.state_dict()[name], tensor), name


def test_modeling_imports_only_torch_and_transformers():
    import ast
    import sys
    from pathlib import Path

    import hfmtl.model.modeling
    from hfmtl.hub.publish import REMOTE_CODE_HELPERS

    folder = Path(hfmtl.model.modeling.__file__).parent
    roots, relative = set(), set()
    for name in ("modeling.py", *REMOTE_CODE_HELPERS):
        for node in ast.walk(ast.parse((folder / name).read_text())):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level:  # `from .heads import ...`: uploaded beside it
                relative.add(f"{node.module}.py")
            elif isinstance(node, ast.ImportFrom):
                roots.add(node.module.split(".")[0])
    assert roots - set(sys.stdlib_module_names) == {"torch", "transformers"}  # publishable as remote code
    assert relative <= set(REMOTE_CODE_HELPERS)
