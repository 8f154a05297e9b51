"""Shared fixtures: the committed tiny encoder/data, offline Hub settings, and a word-level tokenizer."""

import os
import tempfile

# huggingface_hub and datasets read these once, at import: set them before anything imports them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hfmtl-test-hf-home-"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "assets" / "tiny"


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Config paths are relative to the working directory, as when a user runs from the repository root."""
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="session")
def tiny_config():
    from hfmtl.config.run_config import load_config

    return load_config(REPO / "configs" / "tiny.yaml")


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny model trained just long enough to make non-trivial predictions (its run folder)."""
    from hfmtl.config.run_config import load_config
    from hfmtl.train.trainer import train

    output_dir = tmp_path_factory.mktemp("trained") / "run"
    overrides = [f"output_dir={output_dir}", "training.max_steps=400", "training.eval_every=400"]
    train(load_config(REPO / "configs" / "tiny.yaml", overrides))
    return output_dir


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_config):
    from hfmtl.model.encoder import load_tokenizer

    return load_tokenizer(tiny_config.encoder)


@pytest.fixture(scope="session")
def word_tokenizer():
    """A fast tokenizer whose vocabulary splits 'blackburn' into two pieces, for hand-checked alignment."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "peter", "black", "##burn", "visited", "paris", "."]
    backend = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )


def run_two_processes(*args: str) -> None:
    """`torchrun --nproc_per_node 2 ARGS` on the CPU (gloo) from the repository root; fails the test on error."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *args]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def load_script(name: str) -> Any:
    """scripts/<name>.py as a module (scripts/ is not a package, and the benchmarks import it by file). The
    scripts import each other by name, as when run from scripts/, so that folder is on the path while it loads."""
    import importlib.util
    import sys

    scripts = str(REPO / "scripts")
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, scripts)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(scripts)
    return module
