import json
import re
from pathlib import Path

import pytest
import torch
from conftest import run_two_processes
from seqeval.metrics import f1_score

from hfmtl.cli import main
from hfmtl.errors import ConfigError, DataError, ModelLoadError
from hfmtl.evaluation.evaluate_model import evaluate_model_dir
from hfmtl.train.precision import accelerator_with_precision

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report_dir(trained):
    out = trained / "report"
    assert main(["evaluate", str(trained / "model"), "--out", str(out)]) == 0
    return out


def test_report_files_and_keys(report_dir, trained):
    report = json.loads((report_dir / "report.json").read_text())
    assert {
        "created",
        "model",
        "split",
        "data",
        "environment",
        "tasks",
        "main_metrics",
        "aggregate",
        "training",
    } <= set(report)
    assert report["model"]["path"] == str(trained / "model") and len(report["model"]["sha256"]) == 64
    assert report["data"]["ner"]["examples"] == 60 and report["data"]["ner"]["source"].endswith("ner_validation.txt")
    assert set(report["tasks"]["sentiment"]["metrics"]) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert set(report["tasks"]["ner"]["metrics"]["per_type"]) == {"PER", "ORG", "LOC", "MISC"}
    assert report["main_metrics"]["intensity"]["name"] == "pearson"
    assert report["main_metrics"]["emotions"]["name"] == "micro_f1"
    assert set(report["tasks"]["emotions"]["metrics"]["per_label"]) == {"anger", "disgust", "joy", "surprise"}
    assert sorted(p.name for p in (report_dir / "predictions").iterdir()) == [
        "emotions.jsonl",
        "intensity.jsonl",
        "ner.jsonl",
        "sentiment.jsonl",
        "similarity.jsonl",
    ]
    assert (report_dir / "report.md").read_text().count("| sentiment | accuracy |") == 1


def test_evaluation_agrees_with_the_scores_seen_in_training(report_dir, trained):
    report = json.loads((report_dir / "report.json").read_text())
    during_training = json.loads((trained / "model" / "eval_results.json").read_text())["metrics"]
    for task, entry in report["tasks"].items():
        assert entry["metrics"] == during_training[task], task  # same weights, rows and batches: exact


def test_predictions_files_recompute_the_numbers(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    sentiment = [
        json.loads(line) for line in (report_dir / "predictions" / "sentiment.jsonl").read_text().splitlines()
    ]
    accuracy = sum(r["gold"] == r["prediction"] for r in sentiment) / len(sentiment)
    assert accuracy == pytest.approx(report["tasks"]["sentiment"]["metrics"]["accuracy"])
    ner = [json.loads(line) for line in (report_dir / "predictions" / "ner.jsonl").read_text().splitlines()]
    assert all(len(r["tokens"]) == len(r["gold"]) == len(r["prediction"]) for r in ner)
    recomputed = f1_score([r["gold"] for r in ner], [r["prediction"] for r in ner])
    assert recomputed == pytest.approx(report["tasks"]["ner"]["metrics"]["f1"])


def test_html_is_self_contained_and_its_figures_show_the_reported_numbers(report_dir):
    page = (report_dir / "report.html").read_text()
    report = json.loads((report_dir / "report.json").read_text())
    # training curves, confusion matrix, entity F1 bars, intensity scatter, emotion F1 bars, similarity scatter
    assert page.count("<svg") == 6
    assert "<script" not in page and not re.findall(r'(?:src|href)="(?:https?:)?//', page)  # nothing to fetch
    title = page.index("sentiment: confusion matrix")
    figure = page[page.rindex("<svg", 0, title) : page.index("</svg>", title)]
    cells = [int(n) for n in re.findall(r">(\d+)</text>", figure)]  # the only numbers drawn: one per cell
    matrix = report["tasks"]["sentiment"]["metrics"]["confusion_matrix"]
    assert cells == [count for row in matrix for count in row]
    for task, metric in report["main_metrics"].items():
        assert f"<td>{task}</td><td>{metric['name']}</td><td>{metric['value']:.4f}</td>" in page


def test_a_file_outside_the_config_and_a_baseline(trained, report_dir, tmp_path):
    other = tmp_path / "other.conll"
    other.write_text("Anna B-PER\nmet O\nKenji B-PER\n\nParis B-LOC\n")
    baseline = report_dir / "report.json"
    with pytest.raises(DataError, match=r"scored task 'ner' on other data .* the sha256 differ\. Pass --allow-diff"):
        evaluate_model_dir(trained / "model", data={"ner": str(other)}, out_dir=tmp_path / "out", baseline=baseline)
    report, out = evaluate_model_dir(
        trained / "model",
        data={"ner": str(other)},
        out_dir=tmp_path / "out",
        baseline=baseline,
        allow_different_data=True,
    )
    assert report["data"]["ner"]["source"] == str(other) and report["data"]["ner"]["examples"] == 2
    assert report["split"] == "validation and given files"
    assert report["baseline"]["deltas"]["sentiment"]["accuracy"] == 0.0  # same model, same data
    assert report["baseline"]["mean_relative_change"] is not None
    assert "Mean relative change vs baseline" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("target", "data", "error", "message"),
    [
        ("missing", {}, ModelLoadError, "model folder 'missing' does not exist"),
        ("tests/assets/tiny/encoder", {}, ModelLoadError, "holds a 'bert' model, not an hfmtl multi-task model"),
        ("MODEL", {"pos": "x.jsonl"}, ConfigError, r"--data names \['pos'\], but the model's tasks are: sentiment"),
    ],
)
def test_bad_model_dirs_and_task_names(trained, target, data, error, message):
    target = str(trained / "model") if target == "MODEL" else target
    with pytest.raises(error, match=message):
        evaluate_model_dir(target, data=data)


def test_a_report_does_not_depend_on_what_ran_before_it_in_the_process(trained, report_dir, tmp_path):
    # accelerate keeps one precision per process: an Accelerator left behind by an earlier run (a bf16 `train`
    # in a notebook) made every later Accelerator() autocast the same way, so a report depended on history.

    trained_in = json.loads((trained / "environment.json").read_text())["mixed_precision"]
    accelerator_with_precision("no" if trained_in == "bf16" else "bf16", cpu=True)
    report, _ = evaluate_model_dir(trained / "model", out_dir=tmp_path / "after-another-precision")
    assert report["environment"]["mixed_precision"] == trained_in  # the run's own, as in eval_results.json
    first = json.loads((report_dir / "report.json").read_text())
    for task in first["tasks"]:
        assert report["tasks"][task]["metrics"] == first["tasks"][task]["metrics"], task


def test_labels_outside_the_model_are_all_reported_before_anything_runs(trained, tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = [
        {"text": "fine", "label": "positive"},
        {"text": "meh", "label": "neutral"},
        {"text": "ok", "label": "mixed"},
    ]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    listing = r"2 rows of task 'sentiment' cannot be used:\n  .*bad\.jsonl:2: label 'neutral'.*\n  .*:3: label 'mixed'"
    with pytest.raises(DataError, match=listing):
        evaluate_model_dir(trained / "model", data={"sentiment": str(bad)})
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl: no rows for task 'sentiment'"):
        evaluate_model_dir(trained / "model", data={"sentiment": str(empty)})


@pytest.mark.slow
def test_two_processes_give_the_same_report_as_one(trained, report_dir, tmp_path):
    run_two_processes("-m", "hfmtl", "evaluate", str(trained / "model"), "--out", str(tmp_path), "--batch-size", "7")
    two = json.loads((tmp_path / "report.json").read_text())
    one = json.loads((report_dir / "report.json").read_text())
    assert two["environment"]["num_processes"] == 2
    # Other batch sizes pad differently, which moves real-valued outputs in the 6th digit: labels match exactly.
    for task in ("sentiment", "ner"):
        assert two["tasks"][task]["metrics"] == one["tasks"][task]["metrics"], task
    assert two["tasks"]["intensity"]["metrics"] == pytest.approx(one["tasks"]["intensity"]["metrics"], rel=1e-3)
    assert (tmp_path / "predictions" / "ner.jsonl").read_text() == (
        report_dir / "predictions" / "ner.jsonl"
    ).read_text()


class PositionTags(torch.nn.Module):
    """A stand-in NER head that tags each sub-token with its own position: tag p at position p."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.num_tags = num_tags

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(hidden.shape[1]).expand(hidden.shape[0], -1)  # (batch, seq)
        return torch.nn.functional.one_hot(positions, self.num_tags).float()  # (batch, seq, tags)


@pytest.mark.parametrize("empty", ["", "\u200b", "\u00ad"], ids=["empty-string", "zero-width-space", "soft-hyphen"])
def test_a_word_without_sub_tokens_does_not_shift_the_words_after_it(tiny_config, tiny_tokenizer, empty):
    from datasets import Dataset

    from hfmtl.data.collate import Collator
    from hfmtl.data.loading import tokenize_split
    from hfmtl.evaluation.scoring import evaluate_tasks, make_eval_set
    from hfmtl.model.encoder import build_model

    tags = ("O",) + tuple(f"B-P{position}" for position in range(1, 64))
    model = build_model(
        tiny_config,
        {
            "sentiment": ("negative", "positive"),
            "ner": tags,
            "intensity": None,
            "emotions": ("anger", "joy"),
            "similarity": None,
        },
    ).eval()
    model.heads["ner"] = PositionTags(len(tags))  # word i is predicted B-P<position of its first sub-token>
    words = ["Peter", "Blackburn", "met", "officials", "of", "European", "Union", "in", "Buenos", "Aires"]
    with_empty = [*words[:3], empty, *words[3:]]
    encoded = tiny_tokenizer(words, is_split_into_words=True)
    # The tokenizer yields no sub-token for the empty word: both sentences are the same ids.
    assert tiny_tokenizer(with_empty, is_split_into_words=True)["input_ids"] == encoded["input_ids"]
    word_ids = encoded.word_ids()
    first_positions = [word_ids.index(i) for i in range(len(words))]  # [1, 3, 6, ...]: every word its own tag
    gold = [f"B-P{position}" for position in first_positions]
    gold_with_empty = [*gold[:3], "O", *gold[3:]]
    ner = next(task for task in tiny_config.tasks if task.name == "ner")
    examples = Dataset.from_list(
        [{"tokens": with_empty, "tags": [tags.index(tag) for tag in gold_with_empty]}] * 2
        + [{"tokens": words, "tags": [tags.index(tag) for tag in gold]}]
    )
    tokenized = tokenize_split(ner, "validation", examples, tiny_tokenizer, tiny_config.encoder.max_length)
    result = evaluate_tasks(
        model,
        {"ner": make_eval_set("ner", "token_classification", tokenized)},
        Collator(tiny_tokenizer.pad_token_id),
        accelerator_with_precision("no", cpu=True),
        batch_size=2,
    )["ner"]
    assert [record["prediction"] for record in result.predictions] == [gold_with_empty] * 2 + [gold]
    assert result.metrics["f1"] == 1.0


def test_evaluate_never_writes_over_the_users_files_and_keeps_one_report(trained, tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "predictions").mkdir(parents=True)
    (mine / "report.md").write_text("my own report")
    (mine / "notes.txt").write_text("mine")
    assert main(["evaluate", str(trained / "model"), "--out", str(mine)]) == 2
    assert "holds files an evaluation did not write (notes.txt)" in capsys.readouterr().err
    assert (mine / "report.md").read_text() == "my own report"
    out = tmp_path / "report"
    assert main(["evaluate", str(trained / "model"), "--out", str(out)]) == 0
    (out / "predictions" / "gone_task.jsonl").write_text("{}\n")  # an earlier report's task this model lacks
    assert main(["evaluate", str(trained / "model"), "--out", str(out)]) == 0  # an earlier report: replaced
    tasks = set(json.loads((out / "report.json").read_text())["tasks"])
    assert {p.stem for p in (out / "predictions").glob("*.jsonl")} == tasks
