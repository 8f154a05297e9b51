"""The bad-input matrix of docs/errors.md: every row is driven through the CLI, and must print exactly its
message as one line, with no traceback, and exit with status 2 (tracebacks only with --debug)."""

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
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
    env: dict[str, str] = field(default_factory=dict)  # environment variables for the command


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


def earlier_run(tmp: Path, *files: str) -> str:
    """An earlier run's folder, tmp/run: its run_config.yaml, a model, and `files` (relative paths) of the user's."""
    run = tmp / "run"
    (run / "model").mkdir(parents=True)
    for name in ("run_config.yaml", "model/config.json", *files):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("x")
    return str(run)


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
        "a number YAML read where text is expected",
        lambda t, r: ["data", config_with(t, tasks__sentiment__labels=[1.0, 2.0])],
        "<tmp>/config.yaml: 'tasks.sentiment.labels.0' must be a string, got the number 1.0: write an integer, "
        "or the text in quotes",
    ),
    Case(
        "config",
        "unknown task kind",
        lambda t, r: ["data", config_with(t, tasks__ner__kind="pos_tagging")],
        "<tmp>/config.yaml: 'tasks.ner.kind' is 'pos_tagging'; expected one of: classification, token_classification, regression, multi_label_classification",
    ),
    Case(
        "config",
        "duplicate task names",
        lambda t, r: ["data", config_with(t, tasks__ner__name="sentiment")],
        "<tmp>/config.yaml: task name 'sentiment' is used twice; task names must be unique",
    ),
    Case(
        "config",
        "task named like a module attribute",
        lambda t, r: [
            "train",
            config_with(t, tasks__ner__name="type", output_dir=f"{t}/run", sampling={"strategy": "uniform"}),
        ],
        "'tasks.type.name' is 'type', a name PyTorch modules use for their own attributes; choose another",
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
            config_with(
                t,
                sampling={
                    "strategy": "fixed",
                    "weights": {"sentiment": 0, "ner": 0, "intensity": 0, "emotions": 0, "similarity": 0},
                },
            ),
        ],
        "<tmp>/config.yaml: 'sampling.weights' must be >= 0 and not all zero, got {'emotions': 0.0, 'intensity': 0.0, 'ner': 0.0, 'sentiment': 0.0, 'similarity': 0.0}",
    ),
    Case(
        "config",
        "unknown sampling strategy",
        lambda t, r: ["data", config_with(t, sampling={"strategy": "round_robin"})],
        "<tmp>/config.yaml: 'sampling.strategy' must be one of proportional, temperature, uniform, fixed, annealed; got 'round_robin'",
    ),
    Case(
        "config",
        "duplicated YAML key",
        lambda t, r: ["data", data_file(t, "dup.yaml", "seed: 3\ntraining:\n  max_steps: 5\nseed: 4\n")],
        "<tmp>/dup.yaml: key 'seed' appears twice in one mapping, on lines 1 and 4",
    ),
    Case(
        "config",
        "--set value that is broken YAML",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "training.report_to=[tensorboard"],
        "override 'training.report_to=[tensorboard': the value is not valid YAML (while parsing a flow sequence)",
    ),
    Case(
        "config",
        "early stopping patience 0",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "training.early_stopping_patience=0"],
        "configs/tiny.yaml: 'training.early_stopping_patience' must be >= 1 (evaluations) or null, got 0",
    ),
    Case(
        "config",
        "negative weight decay",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "training.weight_decay=-0.1"],
        "configs/tiny.yaml: 'training.weight_decay' must be >= 0, got -0.1",
    ),
    Case(
        "config",
        "label smoothing on a regression task",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "tasks.intensity.label_smoothing=0.1"],
        "configs/tiny.yaml: 'tasks.intensity.label_smoothing' only applies to tasks with a softmax over labels "
        "(classification, token_classification), not regression; remove it",
    ),
    Case(
        "config",
        "class weight for a label the config does not list",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "tasks.sentiment.class_weights={neutral: 2}"],
        "configs/tiny.yaml: 'tasks.sentiment.class_weights' names 'neutral', which is not one of the task's labels "
        "(negative, positive)",
    ),
    Case(
        "training",
        "class weight for a label the training data does not have",
        lambda t, r: ["train", config_with(t, output_dir=str(t / "run"), tasks__ner__class_weights={"B-FOO": 2.0})],
        "'tasks.ner.class_weights' names ['B-FOO'], which are not labels of the task "
        "(O, B-LOC, B-MISC, B-ORG, B-PER, I-LOC, I-ORG, I-PER)",
    ),
    Case(
        "config",
        "weight-average decay of 1",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "training.ema_decay=1"],
        "configs/tiny.yaml: 'training.ema_decay' must be between 0 and 1 (exclusive) or null, got 1.0",
    ),
    Case(
        "config",
        "layer-wise learning-rate decay of 0",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "training.layer_lr_decay=0"],
        "configs/tiny.yaml: 'training.layer_lr_decay' must be in (0, 1] (1: no decay), got 0.0",
    ),
    Case(
        "config",
        "token budget with random batches",
        lambda t, r: [
            "data",
            "configs/tiny.yaml",
            "--set",
            "training.max_tokens_per_batch=4096",
            "--set",
            "training.group_by_length=false",
        ],
        "configs/tiny.yaml: 'training.max_tokens_per_batch' needs 'training.group_by_length: true': random batches "
        "mix lengths, so a token budget cannot size them; set one of the two",
    ),
    Case(
        "config",
        "head learning-rate multiplier 0",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "tasks.ner.head_lr_multiplier=0"],
        "configs/tiny.yaml: 'tasks.ner.head_lr_multiplier' must be > 0, got 0.0",
    ),
    Case(
        "config",
        "per-task early stopping on a task without validation",
        lambda t, r: [
            "data",
            "configs/tiny.yaml",
            "--set",
            "tasks.ner.data.validation=null",
            "--set",
            "tasks.ner.early_stopping_patience=2",
        ],
        "configs/tiny.yaml: 'tasks.ner.early_stopping_patience' cannot stop this task alone: it has no validation "
        "split to watch",
    ),
    Case(
        "config",
        "learned-weight learning rate not positive",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "loss_weighting.learning_rate=0"],
        "configs/tiny.yaml: 'loss_weighting.learning_rate' must be > 0, got 0.0",
    ),
    Case(
        "config",
        "gradient method with one task per step",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "loss_weighting.strategy=pcgrad"],
        "configs/tiny.yaml: 'loss_weighting.strategy' is 'pcgrad', a gradient method: it combines every task's "
        "gradient in each step, so it needs 'sampling.mode: all_tasks' (today each step trains one task)",
    ),
    Case(
        "config",
        "sampling weights with every task in every step",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "sampling.mode=all_tasks"],
        "configs/tiny.yaml: 'sampling.weights' has no effect with 'sampling.mode: all_tasks': every step trains "
        "every task. Weigh the tasks' losses with 'tasks.NAME.loss_weight' instead",
    ),
    Case(
        "export",
        "a folder that is not a model",
        lambda t, r: ["export", str(t), "--out", f"{t}/onnx"],
        "'<tmp>' is not a model folder: it has no config.json",
    ),
    Case(
        "export",
        "unknown format",
        lambda t, r: ["export", str(r / "model"), "--format", "tflite", "--out", f"{t}/onnx"],
        "unknown export format 'tflite'; expected one of: onnx",
    ),
    Case(
        "export",
        "a quantization hfmtl does not have",
        lambda t, r: ["export", str(r / "model"), "--quantize", "int4", "--out", f"{t}/onnx"],
        "unknown quantization 'int4'; expected one of: int8",
    ),
    Case(
        "export",
        "quantizing an ONNX graph at load",
        lambda t, r: ["predict", str(r / "model"), "hello", "--backend", "onnxruntime", "--quantize", "int8"],
        "an ONNX graph is quantized when it is exported: hfmtl export --quantize int8",
    ),
    Case(
        "distill",
        "a teacher whose tokenizer differs from the student's",
        lambda t, r: ["distill", other_tokenizer(t, r), "configs/tiny.yaml", "--set", f"output_dir={t}/run"],
        "the student's tokenizer ('tests/assets/tiny/encoder') differs from the one of the teacher '<tmp>/teacher'; "
        "distillation compares their outputs token by token, so the student's encoder must read text as the "
        "teacher's does",
    ),
    Case(
        "config",
        "seed out of range",
        lambda t, r: ["data", "configs/tiny.yaml", "--set", "seed=-1"],
        "configs/tiny.yaml: 'seed' must be between 0 and 4294967295, got -1",
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
        "override 'tasks.pos': no task named 'pos' (tasks: sentiment, ner, intensity, emotions, similarity)",
    ),
    Case(
        "config",
        "joint tasks that read other data",
        lambda t, r: ["data", config_with(t, joint_tasks=[["sentiment", "ner"]])],
        "<tmp>/config.yaml: 'joint_tasks' group ['sentiment', 'ner']: 'ner' and 'sentiment' must read the same data (same data section, text_column and text_pair_column) to share batches",
    ),
    Case(
        "data",
        "data file missing",
        lambda t, r: ["data", config_with(t, tasks__sentiment__data={"train": "nope.jsonl"})],
        "data file not found: tests/assets/tiny/data/nope.jsonl (relative paths resolve against data_dir 'tests/assets/tiny/data')",
    ),
    Case(
        "data",
        "a shipped config's data file missing",
        lambda t, r: [
            "data",
            config_with(t, data_dir="nowhere", tasks__sentiment__data={"train": "sst2/train.jsonl"}),
        ],
        "data file not found: nowhere/sst2/train.jsonl (relative paths resolve against data_dir 'nowhere'); "
        "run 'hfmtl data CONFIG --fetch' to download it from the Hugging Face Hub",
    ),
    Case(
        "data",
        "--fetch of a file with no Hub source",
        lambda t, r: ["data", config_with(t, tasks__sentiment__data={"train": "mine.jsonl"}), "--fetch"],
        "no Hub source is known for tests/assets/tiny/data/mine.jsonl; --fetch knows the files of the shipped "
        "SST-2 / CoNLL-2003 / SST intensity configs (sst2/train.jsonl, sst2/validation.jsonl, "
        "conll2003/train.jsonl, conll2003/validation.jsonl, sst/train_5class.jsonl, sst/validation_5class.jsonl) "
        "under data_dir; put other files there yourself, or read a Hub dataset directly with the task's "
        "data.hub_id",
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
        "empty label cell",
        lambda t, r: ["data", data_config(t, "sentiment", "s.csv", "text,label\na,positive\nb,\n")],
        "<tmp>/s.csv:3: the label is empty; every row needs a label (a name or an id)",
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
        "CSV quote never closed",
        lambda t, r: [
            "data",
            data_config(t, "sentiment", "s.csv", 'text,label\n"never closed,positive\nok,negative\n'),
        ],
        '<tmp>/s.csv:2: a quoted field opens on this line and does not close on it (a stray or unclosed `"`?); set data.multiline: true if fields span lines, or data.quoting: none if `"` is text',
    ),
    Case(
        "data",
        "TSV row with a missing field",
        lambda t, r: ["data", data_config(t, "sentiment", "s.tsv", "text\tlabel\nfine\tpositive\nbroken\n")],
        "<tmp>/s.tsv:3: 1 fields, but the header has 2 (text, label)",
    ),
    Case(
        "data",
        "header names a column twice",
        lambda t, r: ["data", data_config(t, "sentiment", "s.csv", "text,label,text\na,positive,b\n")],
        "<tmp>/s.csv:1: the header names column(s) 'text' more than once",
    ),
    Case(
        "data",
        "file not UTF-8",
        lambda t, r: ["data", bytes_config(t, "sentiment", "s.jsonl", b'{"text": "caf\xe9", "label": "positive"}\n')],
        "<tmp>/s.jsonl: not UTF-8 text: the byte at offset 13 (0xe9) cannot be decoded; save the file as UTF-8",
    ),
    Case(
        "data",
        "empty NER word",
        lambda t, r: ["data", data_config(t, "ner", "n.jsonl", '{"tokens": ["EU", " "], "ner_tags": ["O", "O"]}\n')],
        "<tmp>/n.jsonl:1: word 2 is empty or only whitespace; every word needs characters",
    ),
    Case(
        "data",
        "regression target not a number",
        lambda t, r: ["data", data_config(t, "intensity", "i.jsonl", '{"text": "a", "intensity": "high"}\n')],
        "<tmp>/i.jsonl:1: regression target 'intensity' must be a finite number, got 'high'",
    ),
    Case(
        "data",
        "multi-label labels not a list",
        lambda t, r: [
            "data",
            data_config(
                t, "emotions", "e.jsonl", '{"text": "a", "emotions": "joy"}\n', tasks__emotions__threshold=0.5
            ),
        ],
        "<tmp>/e.jsonl:1: column 'emotions' must be a list of label names, got str 'joy'",
    ),
    Case(
        "data",
        "multi-label unknown label",
        lambda t, r: [
            "data",
            data_config(
                t,
                "emotions",
                "e.jsonl",
                '{"text": "a", "emotions": ["joy", "fear"]}\n',
                tasks__emotions__labels=["joy", "anger"],
                tasks__emotions__threshold=0.5,
            ),
        ],
        "<tmp>/e.jsonl:1: label 'fear' is not in the task's label set ['joy', 'anger']",
    ),
    Case(
        "data",
        "pair row without its second text",
        lambda t, r: ["data", data_config(t, "similarity", "p.jsonl", '{"sentence1": "a", "score": 0.5}\n')],
        "<tmp>/p.jsonl:1: no column 'sentence2' (the row has: sentence1, score)",
    ),
    Case(
        "config",
        "metric_for_best_model of no task",
        lambda t, r: ["data", config_with(t, training__metric_for_best_model="pos.f1")],
        "<tmp>/config.yaml: 'training.metric_for_best_model' is 'pos.f1'; expected 'mean', a task name (sentiment, ner, intensity, emotions, similarity) or TASK.METRIC",
    ),
    Case(
        "config",
        "threshold outside (0, 1)",
        lambda t, r: ["data", config_with(t, tasks__emotions__threshold=1.5)],
        "<tmp>/config.yaml: 'tasks.emotions.threshold' must be a number between 0 and 1 (exclusive) or 'tuned', got 1.5",
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
        "'training.mixed_precision' is fp16, which is ~19x slower on the CPU; use auto or no",
    ),
    Case(
        "training",
        "output_dir is a file",
        lambda t, r: ["train", "configs/tiny.yaml", "--set", f"output_dir={data_file(t, 'out', '')}"],
        "output_dir '<tmp>/out' is a file, not a folder",
    ),
    Case(
        "training",
        "output_dir holds files no run wrote",
        lambda t, r: [
            "train",
            "configs/tiny.yaml",
            "--set",
            f"output_dir={Path(data_file(t, 'notes.txt', 'x')).parent}",
        ],
        "output_dir '<tmp>' is not empty and does not hold an earlier hfmtl run (notes.txt); hfmtl never removes "
        "files it did not write: choose another folder with --set output_dir=...",
    ),
    Case(
        "training",
        "--overwrite of a run holding the user's files",
        lambda t, r: [
            "train",
            "configs/tiny.yaml",
            "--overwrite",
            "--set",
            f"output_dir={earlier_run(t, 'model/NOTES.md', 'report-mine.md')}",
        ],
        "output_dir '<tmp>/run' holds an earlier hfmtl run, and files it did not write among that run's outputs "
        "(model/NOTES.md, report-mine.md); hfmtl never removes files it did not write: move them out, or choose "
        "another folder with --set output_dir=...",
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
        "model folder",
        "weights missing a head",
        lambda t, r: ["predict", without_ner_head(t, r), "hello"],
        "the weights in '<tmp>/model' do not match its config.json: 2 tensors missing (heads.ner.out.bias, "
        "heads.ner.out.weight). The folder is damaged or mixed from two models; it is not loaded",
    ),
    Case(
        "evaluate",
        "--data for a task the model lacks",
        lambda t, r: ["evaluate", str(r / "model"), "--data", "pos=x.jsonl"],
        "--data names ['pos'], but the model's tasks are: sentiment, ner, intensity, emotions, similarity",
    ),
    Case(
        "evaluate",
        "malformed --data",
        lambda t, r: ["evaluate", str(r / "model"), "--data", "ner"],
        "--data 'ner' must look like TASK=PATH",
    ),
    Case(
        "evaluate",
        "--data for one task twice",
        lambda t, r: ["evaluate", str(r / "model"), "--data", "ner=a.conll", "--data", "ner=b.conll"],
        "--data gives task 'ner' twice (a.conll and b.conll); give each task once",
    ),
    Case(
        "evaluate",
        "--config naming a task the model lacks",
        lambda t, r: [
            "evaluate",
            str(r / "model"),
            "--config",
            config_with(t, tasks__intensity__name="strength", sampling={"strategy": "proportional"}),
        ],
        "the config names task(s) strength that the model does not have; its tasks are: sentiment, ner, intensity, emotions, similarity",
    ),
    Case(
        "evaluate",
        "--baseline scored on other data",
        lambda t, r: ["evaluate", str(r / "model"), "--out", f"{t}/out", "--baseline", other_data_baseline(t)],
        "--baseline <tmp>/b.json scored task 'sentiment' on other data (elsewhere.jsonl) than this evaluation "
        "(tests/assets/tiny/data/sst_validation.jsonl): the sha256 differ. Pass --allow-different-data to compare "
        "anyway",
    ),
    Case(
        "predict",
        "--batch-size below 1",
        lambda t, r: ["predict", str(r / "model"), "a text", "--batch-size", "-1"],
        "--batch-size must be >= 1, got -1",
    ),
    Case(
        "predict",
        "unknown --device",
        lambda t, r: ["predict", str(r / "model"), "a text", "--device", "tpu"],
        "device 'tpu' is not a device name; expected cpu, cuda or cuda:N",
    ),
    Case(
        "evaluate",
        "--batch-size below 1",
        lambda t, r: ["evaluate", str(r / "model"), "--batch-size", "0"],
        "--batch-size must be >= 1, got 0",
    ),
    Case(
        "evaluate",
        "ACCELERATE_MIXED_PRECISION not a precision",
        lambda t, r: ["evaluate", str(r / "model"), "--out", f"{t}/out"],
        "ACCELERATE_MIXED_PRECISION is 'bf32'; expected one of: no, fp16, bf16",
        env={"ACCELERATE_MIXED_PRECISION": "BF32"},
    ),
    Case(
        "evaluate",
        "ACCELERATE_MIXED_PRECISION fp16 on a CPU",
        lambda t, r: ["evaluate", str(r / "model"), "--out", f"{t}/out"],
        "ACCELERATE_MIXED_PRECISION is fp16, which this CPU cannot run at a useful speed; use no",
        env={"ACCELERATE_MIXED_PRECISION": "fp16"},
    ),
    Case(
        "predict",
        "empty text",
        lambda t, r: ["predict", str(r / "model"), "   "],
        "the text is empty or only whitespace; there is nothing to predict on",
    ),
    Case(
        "predict",
        "text of zero-width spaces only",
        lambda t, r: ["predict", str(r / "model"), "\u200b\u200b"],
        "the text has no words, only invisible separators (e.g. zero-width spaces)",
    ),
    Case(
        "model folder",
        "encoder with its own code, not trusted",
        lambda t, r: ["predict", own_code_model(t, r), "a text"],
        "the encoder of '<tmp>/model' comes with its own modelling code (modeling_x.XModel), which hfmtl does not "
        "run unless asked: --trust-remote-code (trust_remote_code=True in Python; only for code you have read and "
        "trust)",
    ),
    Case(
        "predict",
        "nothing to predict on",
        lambda t, r: ["predict", str(r / "model")],
        "nothing to predict on: give texts as arguments or a file with --input",
    ),
    Case(
        "predict",
        "--input of an unknown kind",
        lambda t, r: ["predict", str(r / "model"), "--input", data_file(t, "in.md", "# notes")],
        "<tmp>/in.md: --input reads .txt, .jsonl, .json, .csv, .tsv files, not '.md'",
    ),
    Case(
        "predict",
        "--input without texts",
        lambda t, r: ["predict", str(r / "model"), "--input", data_file(t, "empty.txt", "\n  \n")],
        "<tmp>/empty.txt: no texts to predict on",
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


def own_code_model(tmp: Path, run: Path) -> str:
    """The trained model folder, its encoder's config pointing at modelling code of its own (never run here)."""
    folder = tmp / "model"
    shutil.copytree(run / "model", folder)
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["auto_map"] = {"AutoModel": "modeling_x.XModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_x.py").write_text("raise SystemExit('this code must never run')\n")
    return str(folder)


def bytes_config(tmp: Path, task: str, name: str, content: bytes) -> str:
    """Like data_config, with the task's training file holding exactly these bytes."""
    config = data_config(tmp, task, name, "")
    (tmp / name).write_bytes(content)
    return config


def without_ner_head(tmp: Path, run: Path) -> str:
    from safetensors.torch import load_file, save_file

    folder = tmp / "model"
    shutil.copytree(run / "model", folder)
    weights = load_file(folder / "model.safetensors")
    save_file({n: w for n, w in weights.items() if not n.startswith("heads.ner.")}, folder / "model.safetensors")
    return str(folder)


def other_data_baseline(tmp: Path) -> str:
    baseline = {"tasks": {}, "data": {"sentiment": {"source": "elsewhere.jsonl", "sha256": "0" * 64}}}
    (tmp / "b.json").write_text(json.dumps(baseline))
    return str(tmp / "b.json")


def other_tokenizer(tmp: Path, run: Path) -> str:
    """A copy of the trained model whose tokenizer calls one of its tokens by another name."""
    folder = tmp / "teacher"
    shutil.copytree(run / "model", folder)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab["zzzz"] = vocab.pop(next(token for token in vocab if token.isalpha()))
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    return str(folder)


def pickled_only(tmp: Path, run: Path) -> str:
    folder = tmp / "model"
    shutil.copytree(run / "model", folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    return str(folder)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.area}: {c.what}" for c in CASES])
def test_every_bad_input_gets_its_one_line_message(case, tmp_path, trained, capsys, monkeypatch):
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
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
