"""Publishing to a local fake of the Hub (tests/hub_server.py): the real huggingface_hub client runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_server import FakeHub
from huggingface_hub import ModelCard, snapshot_download

from hfmtl.errors import ConfigError, ModelLoadError
from hfmtl.hub.publish import publish
from hfmtl.model.folder import MODEL_FILES
from hfmtl.serve.pipeline import MultiTaskPipeline

TOKEN = "hf_test_secret_token_123"
REPO = Path(__file__).resolve().parent.parent
TEXTS = ["Anna met officials of Reuters in Paris .", "The plot was awful ."]
PLANTED = {
    ".env": "HF_TOKEN=hf_leak",
    "token.txt": "hf_leak",
    "optimizer.bin": "x",
    "notes.log": "log",
    "secrets.json": "{}",
}


@pytest.fixture
def model_dir(trained, tmp_path):
    """A copy of the trained model folder with files that must never be uploaded planted in it."""
    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    for name, content in PLANTED.items():
        (folder / name).write_text(content)
    (folder / "checkpoints" / "checkpoint-0000010").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-0000010" / "model.safetensors").write_bytes(b"old")
    return folder


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with FakeHub(token=TOKEN) as fake, fake.online():
        yield fake


def test_dry_run_lists_the_allow_listed_files_only(model_dir):
    result = publish(model_dir, "me/tiny-mtl", dry_run=True)
    names = [name for name, _ in result.files]
    assert sorted(names) == sorted(
        [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "eval_results.json",
            "run_config.yaml",
            "README.md",
        ]
    )
    sizes = dict(result.files)
    assert sizes["model.safetensors"] == (model_dir / "model.safetensors").stat().st_size
    assert result.url is None


def test_publish_uploads_exactly_the_allow_list(model_dir, hub, capsys):
    result = publish(model_dir, "me/tiny-mtl", private=True, commit_message="first")
    repo = hub.repos["me/tiny-mtl"]
    arrived = repo["branches"]["main"]
    assert sorted(arrived) == sorted(name for name, _ in result.files)
    assert not set(arrived) & (set(PLANTED) | {"checkpoints"})
    for name in arrived:
        if name != "README.md":
            assert arrived[name] == (model_dir / name).read_bytes(), name
    assert repo["private"] is True and repo["commits"][-1]["summary"] == "first"
    assert all(request.authenticated for request in hub.requests if request.method == "POST")
    card = arrived["README.md"].decode()
    assert TOKEN not in card and TOKEN not in capsys.readouterr().out


def test_the_model_card_parses_with_one_result_per_task(model_dir, hub, tmp_path):
    publish(model_dir, "me/tiny-mtl")
    (tmp_path / "README.md").write_bytes(hub.repos["me/tiny-mtl"]["branches"]["main"]["README.md"])
    card = ModelCard.load(tmp_path / "README.md")
    results = card.data.eval_results
    assert [r.task_name for r in results] == ["sentiment", "ner", "intensity", "emotions", "similarity"]
    assert [r.metric_type for r in results] == ["accuracy", "f1", "pearson", "micro_f1", "pearson"]
    best = json.loads((model_dir / "eval_results.json").read_text())["metrics"]
    assert results[1].metric_value == best["ner"]["f1"]
    assert 'MultiTaskPipeline.from_pretrained("me/tiny-mtl")' in card.text
    assert "B-PER" in card.text and "## Intended use and limits" in card.text


def test_publish_to_a_branch(model_dir, hub):
    publish(model_dir, "me/tiny-mtl", revision="experiment")
    branches = hub.repos["me/tiny-mtl"]["branches"]
    assert "model.safetensors" in branches["experiment"] and "model.safetensors" not in branches["main"]


def test_save_publish_download_load_gives_identical_predictions(model_dir, hub):
    publish(model_dir, "me/tiny-mtl")
    local = MultiTaskPipeline.from_pretrained(model_dir)(TEXTS)
    from_hub = MultiTaskPipeline.from_pretrained("me/tiny-mtl")(TEXTS)
    assert from_hub == local


LOAD_WITH_TRANSFORMERS_ONLY = """
import json, sys, torch
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
assert "hfmtl" not in sys.modules, "hfmtl must not be needed"
ids = torch.tensor([[2, 40, 41, 42, 3]])
with torch.no_grad():
    outputs = model.forward_all(ids, torch.ones_like(ids))
print(json.dumps({"module": type(model).__module__, **{task: out.tolist() for task, out in outputs.items()}}))
"""


@pytest.mark.parametrize("written_by", ["this version", "hfmtl 0.1.0, flat layout"])
def test_published_with_code_transformers_alone_loads_it(written_by, model_dir, hub, tmp_path):
    if written_by != "this version":  # today's code published beside weights and config an older layout wrote
        model_dir = shutil.copytree(REPO / "tests/assets/tiny/model-0.1.0", tmp_path / "old-model")
    publish(model_dir, "me/tiny-mtl", with_code=True)
    folder = snapshot_download("me/tiny-mtl", local_dir=tmp_path / "download")
    assert (Path(folder) / "modeling_hfmtl.py").is_file()
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITH_TRANSFORMERS_ONLY, folder],
        cwd=tmp_path,  # away from the repository, so nothing of hfmtl is on the path by accident
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote.pop("module").endswith("modeling_hfmtl")
    local = MultiTaskPipeline.from_pretrained(model_dir).model
    ids = torch.tensor([[2, 40, 41, 42, 3]])
    with torch.no_grad():
        for task, logits in local.forward_all(ids, torch.ones_like(ids)).items():
            assert torch.tensor(remote[task]) == pytest.approx(logits, abs=1e-6), task


@pytest.mark.parametrize(
    ("repo_id", "message"),
    [("bad id", "is not a valid Hub repo id"), ("no-owner", "must name its owner: user/name")],
)
def test_invalid_repo_ids(model_dir, repo_id, message):
    with pytest.raises(ConfigError, match=message):
        publish(model_dir, repo_id, dry_run=True)


def test_only_hfmtl_model_folders_are_published(tmp_path):
    with pytest.raises(ModelLoadError, match="holds a 'bert' model, not an hfmtl multi-task model"):
        publish(REPO / "tests/assets/tiny/encoder", "me/x", dry_run=True)
    with pytest.raises(ModelLoadError, match="is not a model folder: it has no config.json"):
        publish(tmp_path, "me/x", dry_run=True)


def test_no_token_is_a_clear_error_before_any_request(model_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-home"))  # no stored login either
    with FakeHub() as fake, fake.online():
        with pytest.raises(ConfigError, match="no Hugging Face token: set HF_TOKEN"):
            publish(model_dir, "me/tiny-mtl")
        assert not [r for r in fake.requests if r.method == "POST"]


def test_publishing_offline_is_one_clear_error(model_dir, monkeypatch):
    from hfmtl.errors import HubError

    monkeypatch.setenv("HF_TOKEN", TOKEN)  # a token, but HF_HUB_OFFLINE=1 (as in these tests) forbids requests
    with pytest.raises(HubError, match=r"publishing to 'me/offline' failed, no commit was made \("):
        publish(model_dir, "me/offline")


def test_the_cli_never_prints_the_token(model_dir):
    with FakeHub(token=TOKEN) as fake:
        env = {**os.environ, **fake.env(), "HF_TOKEN": TOKEN}
        command = [sys.executable, "-m", "hfmtl", "publish", str(model_dir), "--repo-id", "me/cli", "--private"]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "Uploaded 7 files to me/cli" in result.stdout
        assert TOKEN not in result.stdout + result.stderr
        assert sorted(fake.repos["me/cli"]["branches"]["main"]) == sorted(
            name for name in os.listdir(model_dir) if name in MODEL_FILES
        ) + ["README.md"] * ("README.md" not in os.listdir(model_dir))
