"""The multi-label kind: rows, the BCE head, thresholds (fixed and tuned), metrics against scikit-learn."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support

from hfmtl.config.run_config import DataConfig, TaskConfig
from hfmtl.errors import ConfigError, DataError
from hfmtl.evaluation.metrics import compute_metrics
from hfmtl.model.heads import MultiLabelHead
from hfmtl.model.modeling import TaskSpec
from hfmtl.tasks.kind import EvalSet
from hfmtl.tasks.multi_label import MULTI_LABEL_CLASSIFICATION as KIND
from hfmtl.tasks.multi_label import tune_thresholds, tuned_spec

LABELS = ("anger", "joy", "surprise")
TASK = TaskConfig(name="emotions", kind="multi_label_classification", data=DataConfig("t.jsonl"), label_column="e")


def test_a_row_becomes_a_multi_hot_vector_and_bad_rows_are_named():
    example = KIND.make_example({"text": "wow", "e": ["surprise", "joy"]}, TASK, LABELS, "f:1")
    assert example == {"text": "wow", "label": [0.0, 1.0, 1.0]}
    assert KIND.make_example({"text": "meh", "e": []}, TASK, LABELS, "f:2")["label"] == [0.0, 0.0, 0.0]
    with pytest.raises(DataError, match=r"f:3: column 'e' must be a list of label names, got str 'joy'"):
        KIND.make_example({"text": "x", "e": "joy"}, TASK, LABELS, "f:3")
    with pytest.raises(DataError, match=r"f:4: label 'fear' is not in the task's label set"):
        KIND.make_example({"text": "x", "e": ["joy", "fear"]}, TASK, LABELS, "f:4")


def test_the_head_loss_is_binary_cross_entropy_by_hand():
    logits, targets = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    by_hand = -(np.log(0.5) + np.log(1 - 1 / (1 + np.exp(-2.0)))) / 2
    assert MultiLabelHead(4, 2, "mean", 0.0).loss(logits, targets).item() == pytest.approx(by_hand, rel=1e-6)


def test_metrics_match_scikit_learn():
    gold = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]
    predicted = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
    scores = compute_metrics("multi_label_classification", predicted, gold, LABELS)
    assert scores["micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro")) == pytest.approx(8 / 11)
    assert scores["macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro"))
    assert scores["exact_match"] == 0.25
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, zero_division=0)
    assert scores["per_label"]["surprise"] == pytest.approx(
        {"precision": precision[2], "recall": recall[2], "f1": f1[2], "support": support[2]}
    )


def test_thresholds_decide_what_the_pipeline_answers():
    spec = TaskSpec("emotions", "multi_label_classification", LABELS, thresholds=(0.5, 0.3, 0.9))
    answer = KIND.decode(torch.tensor([0.6, 0.35, 0.8]), spec)
    assert answer == [{"label": "anger", "score": pytest.approx(0.6)}, {"label": "joy", "score": pytest.approx(0.35)}]
    default = KIND.decode(torch.tensor([0.6, 0.35, 0.8]), TaskSpec("emotions", "multi_label_classification", LABELS))
    assert [a["label"] for a in default] == ["surprise", "anger"]  # best first, 0.5 for each label


def test_tuned_thresholds_pick_the_best_f1_per_label_nearest_one_half_on_ties():
    probabilities = np.array([[0.9, 0.30, 0.1], [0.8, 0.25, 0.2], [0.2, 0.10, 0.3], [0.1, 0.05, 0.4]])
    gold = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    anger, joy, surprise = tune_thresholds(probabilities, gold)
    assert anger == 0.5  # every threshold in (0.2, 0.8] separates perfectly: the one nearest 0.5
    assert joy == 0.25  # only thresholds in (0.10, 0.25] catch both joy rows without the others
    assert surprise == 0.5  # no gold row: the default stays


def test_tuning_scores_with_the_tuned_thresholds():
    spec = TaskSpec("emotions", "multi_label_classification", LABELS)
    rows = EvalSet("emotions", KIND.name, rows=[], gold=[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], inputs=["a", "b"])
    predicted = [[0.9, 0.3, 0.1], [0.1, 0.1, 0.7]]
    assert KIND.score(rows, predicted, spec).metrics["micro_f1"] == pytest.approx(0.8)  # joy missed at 0.5
    tuned = tuned_spec(spec, rows, predicted)
    assert tuned.thresholds[1] <= 0.3
    assert KIND.score(rows, predicted, tuned).metrics["micro_f1"] == 1.0


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (1.0, r"'tasks\.emotions\.threshold' must be a number between 0 and 1 \(exclusive\) or 'tuned', got 1\.0"),
        (0.0, r"must be a number between 0 and 1"),
    ],
)
def test_a_threshold_outside_zero_one_is_refused(threshold, message):
    task = TaskConfig(name="emotions", kind="multi_label_classification", data=DataConfig("t"), threshold=threshold)
    with pytest.raises(ConfigError, match=message):
        KIND.check_config(task, "tasks.emotions")


def test_tuning_needs_a_validation_split_and_other_kinds_take_no_threshold():
    task = TaskConfig(name="emotions", kind="multi_label_classification", data=DataConfig("t"), threshold="tuned")
    with pytest.raises(ConfigError, match="needs a validation split to tune on"):
        KIND.check_config(task, "tasks.emotions")
    from hfmtl.tasks import TASK_KINDS

    sentiment = TaskConfig(name="s", kind="classification", data=DataConfig("t"), threshold=0.5)
    with pytest.raises(ConfigError, match=r"'tasks\.s\.threshold' only applies to multi_label_classification"):
        TASK_KINDS["classification"].check_config(sentiment, "tasks.s")


def test_a_saved_spec_with_bad_thresholds_is_named():
    spec = TaskSpec("emotions", "multi_label_classification", LABELS, thresholds=(0.5, 1.5, 0.5))
    assert "needs one threshold in (0, 1) per label" in KIND.check_spec(spec)
    assert KIND.check_spec(TaskSpec("emotions", "multi_label_classification", LABELS, thresholds=(0.5,))) is not None
    assert KIND.check_spec(TaskSpec("emotions", "multi_label_classification", LABELS)) is None


def test_the_head_starts_at_each_label_s_prior():
    from datasets import Dataset

    head = MultiLabelHead(4, 3, "mean", 0.0)
    rows = Dataset.from_dict({"labels": [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]})
    KIND.init_head(head, rows)
    assert torch.sigmoid(head.out.bias).tolist()[:2] == pytest.approx([0.75, 0.25], abs=1e-6)
    assert torch.sigmoid(head.out.bias)[2].item() == pytest.approx(1e-4, rel=1e-3)  # never seen: clipped, finite
