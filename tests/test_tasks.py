import numpy as np
import pytest
import torch

from hfmtl.data.batching import length_grouped_batches, padding_efficiency, random_batches
from hfmtl.data.collate import Collator
from hfmtl.model.modeling import TaskSpec
from hfmtl.tasks import TASK_KINDS
from hfmtl.tasks.classification import CLASSIFICATION
from hfmtl.tasks.labels import infer_labels, label_id
from hfmtl.tasks.regression import REGRESSION
from hfmtl.tasks.token_classification import TOKEN_CLASSIFICATION, decode


def test_ner_labels_go_on_the_first_sub_token_only(word_tokenizer):
    words = ["Peter", "Blackburn", "visited", "Paris", "."]
    tags = [1, 2, 0, 3, 0]  # B-PER I-PER O B-LOC O
    out = TOKEN_CLASSIFICATION.tokenize({"tokens": [words], "tags": [tags]}, word_tokenizer, max_length=32)
    tokens = word_tokenizer.convert_ids_to_tokens(out["input_ids"][0])
    assert tokens == ["[CLS]", "peter", "black", "##burn", "visited", "paris", ".", "[SEP]"]
    assert out["labels"][0] == [-100, 1, 2, -100, 0, 3, 0, -100]


def test_ner_truncation_keeps_the_remaining_labels_aligned(word_tokenizer):
    words = ["Peter", "Blackburn", "visited", "Paris", "."]
    out = TOKEN_CLASSIFICATION.tokenize({"tokens": [words], "tags": [[1, 2, 0, 3, 0]]}, word_tokenizer, max_length=5)
    assert word_tokenizer.convert_ids_to_tokens(out["input_ids"][0]) == ["[CLS]", "peter", "black", "##burn", "[SEP]"]
    assert out["labels"][0] == [-100, 1, 2, -100, -100]


def test_decoding_into_user_facing_answers():
    sentiment = TaskSpec("s", "classification", ("neg", "pos"))
    assert CLASSIFICATION.decode(torch.tensor([0.25, 0.75]), sentiment) == {"label": "pos", "score": 0.75}
    assert REGRESSION.decode(torch.tensor(0.25), TaskSpec("i", "regression")) == 0.25


def test_bio_tags_become_entity_spans_that_slice_the_text():
    text = "Peter  Blackburn visited New York, then Acme Corp."
    words = [
        (0, 5, "B-PER", 0.9),
        (7, 16, "I-PER", 0.7),
        (17, 24, "O", 0.99),
        (25, 28, "B-LOC", 0.8),
        (29, 33, "I-LOC", 0.6),
        (33, 34, "O", 0.9),
        (35, 39, "O", 0.9),
        (40, 44, "I-ORG", 0.5),  # an I- that continues nothing starts an entity (conlleval's reading)
        (45, 49, "B-ORG", 0.4),  # a B- right after starts a new one
        (49, 50, "O", 0.9),
    ]
    entities = decode(text, words)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in entities] == [
        ("PER", "Peter  Blackburn", 0, 16),
        ("LOC", "New York", 25, 33),
        ("ORG", "Acme", 40, 44),
        ("ORG", "Corp", 45, 49),
    ]
    assert entities[0]["score"] == pytest.approx(0.8)
    assert all(text[e["start"] : e["end"]] == e["word"] for e in entities)


def test_label_inference_and_matching():
    assert infer_labels([1, 0, 10, 2]) == ("0", "1", "2", "10")
    assert infer_labels(["I-PER", "O", "B-PER"]) == ("O", "B-PER", "I-PER")
    assert label_id("pos", ("neg", "pos"), "f:1") == 1
    assert label_id(0, ("neg", "pos"), "f:1") == 0
    assert label_id("1", ("neg", "pos"), "f:1") == 1


def test_collator_pads_each_kind_dynamically():
    collate = Collator(pad_token_id=0)
    batch = collate([{"input_ids": [5, 6, 7], "labels": [1, 2, -100]}, {"input_ids": [5], "labels": [3]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[1, 2, -100], [3, -100, -100]]
    assert Collator(0)([{"input_ids": [1], "labels": 1}])["labels"].dtype == torch.long
    assert Collator(0)([{"input_ids": [1], "labels": 0.5}])["labels"].dtype == torch.float32
    assert Collator(0, pad_to_multiple_of=8)([{"input_ids": [1] * 9, "labels": 1}])["input_ids"].shape == (1, 16)


def test_padding_efficiency_by_hand_and_length_grouping():
    assert padding_efficiency([2, 4, 4, 4], [[0, 1], [2, 3]]) == pytest.approx(14 / 16)
    assert padding_efficiency([3, 5], [[0, 1]], multiple=8) == pytest.approx(8 / 16)
    lengths = np.random.default_rng(0).integers(1, 60, size=5000).tolist()
    grouped = length_grouped_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(i for batch in grouped for i in batch) == list(range(5000))
    randomly = random_batches(5000, 32, np.random.default_rng(1))
    assert padding_efficiency(lengths, grouped) > 0.9 > padding_efficiency(lengths, randomly)


def test_every_kind_follows_the_protocol():
    from hfmtl.model.heads import HEAD_TYPES
    from hfmtl.tasks.kind import TaskKind

    for name, kind in TASK_KINDS.items():
        assert kind.name == name and name in HEAD_TYPES
        members = [m for m in vars(TaskKind) if not m.startswith("_")] + list(TaskKind.__annotations__)
        for member in members:
            assert hasattr(kind, member), (name, member)
