"""Every metric against a direct computation with scikit-learn, SciPy or seqeval, and against hand counts."""

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.metrics import f1_score as sk_f1

from hfmtl.evaluation.metrics import TaskMetric, aggregate, compute_metrics


def test_classification_by_hand_and_against_sklearn():
    gold = [0, 0, 1, 1, 2, 2, 2, 1]
    predicted = [0, 1, 1, 1, 2, 0, 2, 2]
    scores = compute_metrics("classification", predicted, gold, ["neg", "neu", "pos"])
    assert scores["accuracy"] == pytest.approx(5 / 8) == accuracy_score(gold, predicted)
    assert scores["macro_f1"] == pytest.approx(sk_f1(gold, predicted, average="macro"))
    assert (
        scores["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [1, 0, 2]] == confusion_matrix(gold, predicted).tolist()
    )
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted)
    assert scores["per_class"]["neu"] == pytest.approx(
        {"precision": precision[1], "recall": recall[1], "f1": f1[1], "support": support[1]}
    )
    assert scores["per_class"]["neu"]["precision"] == pytest.approx(2 / 3)  # 2 of the 3 'neu' guesses are right


def test_a_class_never_predicted_nor_present_scores_zero_not_an_error():
    scores = compute_metrics("classification", [0, 0], [0, 0], ["a", "b"])
    assert scores["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_entity_f1_by_hand_and_against_seqeval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    scores = compute_metrics("token_classification", predicted, gold, None)
    # gold entities: PER, LOC, ORG, PER (4); predicted: PER, ORG(wrong type), ORG (3); correct: PER, ORG (2)
    assert scores["precision"] == pytest.approx(2 / 3) == precision_score(gold, predicted)
    assert scores["recall"] == pytest.approx(2 / 4) == recall_score(gold, predicted)
    assert scores["f1"] == pytest.approx(f1_score(gold, predicted))
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    assert scores["per_type"]["PER"]["f1"] == pytest.approx(report["PER"]["f1-score"])
    assert scores["per_type"]["PER"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert scores["tag_accuracy"] == pytest.approx(5 / 7)


def test_an_entity_with_a_wrong_boundary_does_not_count():
    gold, predicted = [["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-PER", "O"]]
    assert compute_metrics("token_classification", predicted, gold, None)["f1"] == 0.0


def test_regression_against_scipy():
    rng = np.random.default_rng(0)
    gold = rng.random(50)
    predicted = gold + rng.normal(0, 0.2, 50)
    scores = compute_metrics("regression", predicted.tolist(), gold.tolist(), None)
    assert scores["pearson"] == pytest.approx(pearsonr(predicted, gold).statistic, abs=1e-12)
    assert scores["spearman"] == pytest.approx(spearmanr(predicted, gold).statistic, abs=1e-12)
    assert scores["mse"] == pytest.approx(np.mean((predicted - gold) ** 2))
    assert scores["mae"] == pytest.approx(np.mean(np.abs(predicted - gold)))


def test_a_constant_prediction_has_zero_correlation():
    assert compute_metrics("regression", [0.5, 0.5, 0.5], [0.1, 0.5, 0.9], None)["pearson"] == 0.0


def test_modules_are_evaluate_metrics_usable_offline():
    import evaluate

    module = TaskMetric("regression", keep_in_memory=True)
    assert isinstance(module, evaluate.Metric)
    module.add_batch(predictions=[0.1, 0.2], references=[0.1, 0.3])
    module.add_batch(predictions=[0.9], references=[0.8])
    assert module.compute()["pearson"] == pytest.approx(pearsonr([0.1, 0.2, 0.9], [0.1, 0.3, 0.8]).statistic)


def test_aggregate_is_the_mean_of_main_metrics():
    metrics = {"s": {"accuracy": 0.9, "macro_f1": 0.1}, "n": {"f1": 0.8}, "i": {"pearson": 0.7, "mse": 9.0}}
    kinds = {"s": "classification", "n": "token_classification", "i": "regression"}
    assert aggregate(metrics, kinds) == pytest.approx(0.8)
