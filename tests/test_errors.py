"""The bad-input matrix of docs/errors.md: every row is driven through the CLI, and must print exactly its
message as one line, with no traceback, and exit with status 2 (tracebacks only with --debug)."""

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hfmtl.cli import main

REPO = Path(__file__).resolve().parent.parent
TINY = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())


@dataclass(frozen=True)
class Case:
    area: str
    what: str
    argv: Callable[[Path, Path], list[str]]  # (tmp folder, trained run folder) → command-line arguments
    message: str  # exact, with <tmp> for the temporary folder


def config_with(tmp: Path, **changes: object) -> str:
    """The tiny config with top-level or dotted keys changed, written to tmp/config.yaml."""
    raw = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        node = raw
        *parents, last = key.split("__")
        for part in parents:
            node = next(t for t in node if t["name"] == part) if isinstance(node, list) else node[part]
        node[last] = value
    (tmp / "config.yaml").write_text(yaml.safe_dump(raw))
    return str(tmp / "config.yaml")


def data_file(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def data_config(tmp: Path, task: str, name: str, text: str, **changes: object) -> str:
    """The tiny config reading its data from tmp, where one task's training file is replaced by `text`."""
    for tiny_file in (REPO / "tests" / "assets" / "tiny" / "data").iterdir():
        shutil.copy(tiny_file, tmp / tiny_file.name)
    data_file(tmp, name, text)
    return config_with(tmp, data_dir=str(tmp), **{f"tasks__{task}__data": {"train": name}}, **changes)


def train(config: str, *extra: str) -> list[str]:
    return ["data", config, *extra] if not extra or extra[0] != "--train" else ["train", config, *extra[1:]]


CASES = [
    Case(
        "config",
        "config file missing",
        lambda t, r: ["data", str(t / "nope.yaml")],
        "config file not found: <tmp>/nope.yaml",
    ),
    Case(
        "config",
        "unknown key",
        lambda t, r: ["data", config_with(t, training={"max_stepz": 3})],
        "<tmp>/config.yaml: unknown key 'training.max_stepz'; did you mean 'training.max_steps'?",
    ),
    Case(
        "config",
        "wrong type",
        lambda t, r: ["data", config_with(t, seed="seven")],
        "<tmp>/config.yaml: 'seed' must be an integer, got 'seven'",
    ),
    Case(
        "config",
        "unknown task kind",
        lambda t, r: ["data", config_with(t, tasks__ner__kind="pos_tagging")],
        "<tmp>/config.yaml: 'tasks.ner.kind' is 'pos_tagging'; expected one of: classification, token_classification, regression",
    ),
    Case(
        "config",
        "duplicate task names",
        lambda t, r: ["data", config_with(t, tasks__ner__name="sentiment")],
        "<tmp>/config.yaml: task name 'sentiment' is used twice; task names must be unique",
    ),
    Case(
        "config",
        "warmup longer than training",
        lambda t, r: ["data", config_with(t, training={"max_steps": 5, "warmup_steps": 10})],
        "<tmp>/config.yaml: 'training.warmup_steps' (10) must be between 0 and 'training.max_steps' (5)",
    ),
    Case(
        "config",
        "sampling weights all zero",
        lambda t, r: [
            "data",
            config_with(t, sampling={"strategy": "fixed", "weights": {"sentiment": 0, "ner": 0, "intensity": 0}}),
        ],
        "<tmp>/config.yaml: 'sampling.weights' must be >= 0 and not all zero, got {'intensity': 0.0, 'ner': 0.0, 'sentiment': 0.0}",
    ),
    Case(
        "config",
        "unknown sampling strategy",
        lambda t, r: ["data", config_with(t, sampling={"strategy": "round_robin"})],
        "<tmp>/config.yaml: 'sampling.strategy' must be one of proportional, temperature, uniform, fixed, annealed; got 'round_robin'",
    ),
    Case(
        "config",
        "malformed --set",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "training.max_steps"],
        "override 'training.max_steps' must look like key.path=value",
    ),
    Case(
        "config",
        "--set of a task that does not exist",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "tasks.pos.loss_weight=2"],
        "override 'tasks.pos': no task named 'pos' (tasks: sentiment, ner, intensity)",
    ),
    Case(
        "config",
        "joint tasks that read other data",
        lambda t, r: ["data", config_with(t, joint_tasks=[["sentiment", "ner"]])],
        "<tmp>/config.yaml: 'joint_tasks' group ['sentiment', 'ner']: 'ner' and 'sentiment' must read the same data (same data section and text_column) to share batches",
    ),
    Case(
        "data",
        "data file missing",
        lambda t, r: ["data", config_with(t, tasks__sentiment__data={"train": "nope.jsonl"})],
        "data file not found: tests/assets/tiny/data/nope.jsonl (relative paths resolve against data_dir 'tests/assets/tiny/data')",
    ),
    Case(
        "data",
        "not JSON",
        lambda t, r: ["data", data_config(t, "sentiment", "s.jsonl", '{"text": "a", "label": 1}\n{"text": "b"\n')],
        "<tmp>/s.jsonl:2: not valid JSON (Expecting ',' delimiter); expected one object per line",
    ),
    Case(
        "data",
        "text column missing",
        lambda t, r: ["data", data_config(t, "sentiment", "s.jsonl", '{"sentence": "a", "label": 1}\n')],
        "<tmp>/s.jsonl:1: no column 'text' (the row has: sentence, label)",
    ),
    Case(
        "data",
        "label not in the label set",
        lambda t, r: ["data", data_config(t, "sentiment", "s.jsonl", '{"text": "a", "label": "neutral"}\n')],
        "<tmp>/s.jsonl:1: label 'neutral' is not in the task's label set ['negative', 'positive']",
    ),
    Case(
        "data",
        "empty split",
        lambda t, r: ["data", data_config(t, "sentiment", "s.jsonl", "")],
        "<tmp>/s.jsonl: the train split of task 'sentiment' has no rows",
    ),
    Case(
        "data",
        "words and tags of different length",
        lambda t, r: [
            "data",
            data_config(t, "ner", "n.jsonl", '{"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG"]}\n'),
        ],
        "<tmp>/n.jsonl:1: 2 words but 1 tags in 'ner_tags'; expected one tag per word",
    ),
    Case(
        "data",
        "CoNLL line with a missing column",
        lambda t, r: ["data", data_config(t, "ner", "n.txt", "EU NNP B-ORG\nrejects VBZ\n")],
        "<tmp>/n.txt:2: expected 3 space-separated columns, found 2",
    ),
    Case(
        "data",
        "regression target not a number",
        lambda t, r: ["data", data_config(t, "intensity", "i.jsonl", '{"text": "a", "intensity": "high"}\n')],
        "<tmp>/i.jsonl:1: regression target 'intensity' must be a finite number, got 'high'",
    ),
    Case(
        "data",
        "file format unknown",
        lambda t, r: ["data", data_config(t, "sentiment", "s.data", "x")],
        "<tmp>/s.data: cannot tell the format from the suffix '.data'; set the task's data.format to one of conll, csv, json, jsonl, parquet, tsv",
    ),
    Case(
        "encoder",
        "encoder path missing",
        lambda t, r: ["data", config_with(t, encoder={"name_or_path": "./no/encoder"})],
        "encoder path './no/encoder' does not exist",
    ),
    Case(
        "encoder",
        "encoder package not installed",
        lambda t, r: ["data", config_with(t, encoder={"name_or_path": "package:no_such_model_pkg"})],
        "encoder 'package:no_such_model_pkg' needs the Python package 'no_such_model_pkg', which is not installed (pip install no-such-model-pkg)",
    ),
    Case(
        "encoder",
        "max_length beyond the encoder",
        lambda t, r: [
            "data",
            config_with(t, encoder={"name_or_path": "tests/assets/tiny/encoder", "max_length": 1024}),
        ],
        "'encoder.max_length' is 1024, but 'tests/assets/tiny/encoder' takes at most 128 tokens",
    ),
    Case(
        "training",
        "fp16 on a CPU",
        lambda t, r: [
            "train",
            "configs/tiny.yaml",
            "--set",
            f"output_dir={t}/run",
            "--set",
            "training.mixed_precision=fp16",
        ],
        "'training.mixed_precision' is fp16, which is ~19x slower on the CPU; use bf16 or no",
    ),
    Case(
        "training",
        "--resume without checkpoints",
        lambda t, r: ["train", "configs/tiny.yaml", "--set", f"output_dir={t}/run", "--resume"],
        "--resume: no intact checkpoint in '<tmp>/run/checkpoints'",
    ),
    Case(
        "training",
        "--resume of a missing checkpoint",
        lambda t, r: ["train", "configs/tiny.yaml", "--set", f"output_dir={t}/run", "--resume", f"{t}/gone"],
        "--resume: checkpoint '<tmp>/gone' does not exist",
    ),
    Case(
        "training",
        "NER layer beyond the encoder",
        lambda t, r: ["train", "configs/tiny.yaml", "--set", f"output_dir={t}/run", "--set", "tasks.ner.layer=7"],
        "'tasks.ner.layer' is 7, but 'tests/assets/tiny/encoder' has 2 layers",
    ),
    Case(
        "model folder",
        "model folder missing",
        lambda t, r: ["evaluate", f"{t}/nothing"],
        "model folder '<tmp>/nothing' does not exist",
    ),
    Case(
        "model folder",
        "not an hfmtl model",
        lambda t, r: ["evaluate", "tests/assets/tiny/encoder"],
        "'tests/assets/tiny/encoder' holds a 'bert' model, not an hfmtl multi-task model",
    ),
    Case(
        "model folder",
        "weights only as a pickle",
        lambda t, r: ["predict", pickled_only(t, r), "hello"],
        "'<tmp>/model' has no model.safetensors (hfmtl loads weights only from safetensors)",
    ),
    Case(
        "evaluate",
        "--data for a task the model lacks",
        lambda t, r: ["evaluate", str(r / "model"), "--data", "pos=x.jsonl"],
        "--data names ['pos'], but the model's tasks are: sentiment, ner, intensity",
    ),
    Case(
        "evaluate",
        "malformed --data",
        lambda t, r: ["evaluate", str(r / "model"), "--data", "ner"],
        "--data 'ner' must look like TASK=PATH",
    ),
    Case(
        "predict",
        "empty text",
        lambda t, r: ["predict", str(r / "model"), "   "],
        "the text is empty or only whitespace; there is nothing to predict on",
    ),
    Case(
        "predict",
        "nothing to predict on",
        lambda t, r: ["predict", str(r / "model")],
        "nothing to predict on: give texts as arguments or a file with --input",
    ),
    Case(
        "predict",
        "--input file missing",
        lambda t, r: ["predict", str(r / "model"), "--input", f"{t}/in.txt"],
        "input file not found: <tmp>/in.txt",
    ),
    Case(
        "publish",
        "invalid repo id",
        lambda t, r: ["publish", str(r / "model"), "--repo-id", "me/bad name", "--dry-run"],
        "--repo-id 'me/bad name' is not a valid Hub repo id: Repo id must use alphanumeric chars, '-', '_' or '.'. The name cannot start or end with '-' or '.' and the maximum length is 96: 'me/bad name'.",
    ),
    Case(
        "publish",
        "repo id without owner",
        lambda t, r: ["publish", str(r / "model"), "--repo-id", "model", "--dry-run"],
        "--repo-id 'model' must name its owner: user/name or organization/name",
    ),
]


def pickled_only(tmp: Path, run: Path) -> str:
    folder = tmp / "model"
    shutil.copytree(run / "model", folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    return str(folder)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}: {c.what}" for c in CASES])
def test_every_bad_input_gets_its_one_line_message(case, tmp_path, trained, capsys):
    code = main(case.argv(tmp_path, trained))
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    assert captured.err.replace(str(tmp_path), "<tmp>") == f"hfmtl: error: {case.message}\n"


def test_the_matrix_in_docs_lists_every_case():
    text = (REPO / "docs" / "errors.md").read_text()
    rows = re.findall(r"^\| (?!area|---)", text, flags=re.MULTILINE)
    assert len(CASES) >= 25 and len(rows) == len(CASES)
    for case in CASES:
        assert f"`{case.message}`" in text, case.what


def test_debug_shows_the_traceback(tmp_path):
    from hfmtl.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["data", str(tmp_path / "nope.yaml"), "--debug"])
