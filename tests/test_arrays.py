import numpy as np
import pytest
import torch
from datasets import Dataset

from hfmtl.data.arrays import Ragged, RowArrays
from hfmtl.data.collate import Collator

ROWS = [
    {"input_ids": [5, 6, 7], "labels": [1, -100, 2]},
    {"input_ids": [8], "labels": [3]},
    {"input_ids": [9, 10, 11, 12, 13], "labels": [0, 1, -100, -100, 4]},
]


@pytest.mark.parametrize("multiple", [None, 4])
def test_array_batches_equal_the_row_collator(multiple):
    """The vectorised path gives exactly what the per-row collator gives, in any row order."""
    arrays = RowArrays.from_rows(ROWS)
    for indices in ([0, 1, 2], [2, 0], [1]):
        expected = Collator(pad_token_id=0, pad_to_multiple_of=multiple)([ROWS[i] for i in indices])
        batch = arrays.batch(indices, pad_token_id=0, multiple=multiple)
        for key in ("input_ids", "attention_mask", "labels"):
            assert torch.equal(batch[key], expected[key]), (key, indices)


def test_arrays_from_a_dataset_read_the_selected_rows_through_arrow():
    dataset = Dataset.from_list([{"input_ids": row["input_ids"], "labels": i * 0.5} for i, row in enumerate(ROWS)])
    arrays = RowArrays.from_dataset(dataset.select([2, 0]))  # an indices mapping, as select/shuffle make
    assert arrays.lengths.tolist() == [5, 3]
    assert arrays.labels.dtype == np.float32 and arrays.labels.tolist() == [1.0, 0.0]
    batch = arrays.batch([1, 0], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0, 0], [9, 10, 11, 12, 13]]
    assert batch["labels"].dtype == torch.float32


def test_token_labels_from_a_dataset_are_ragged_and_padded_with_the_ignore_index():
    arrays = RowArrays.from_dataset(Dataset.from_list(ROWS).select([1, 2]))
    assert isinstance(arrays.labels, Ragged)
    assert arrays.batch([0, 1], pad_token_id=0)["labels"].tolist() == [[3, -100, -100, -100, -100], ROWS[2]["labels"]]


def test_joint_rows_carry_a_dict_of_labels():
    joint = [{"input_ids": r["input_ids"], "labels": {"a": i, "b": float(i)}} for i, r in enumerate(ROWS)]
    batch = RowArrays.from_rows(joint).batch([2, 1], pad_token_id=0)
    assert batch["labels"]["a"].tolist() == [2, 1] and batch["labels"]["b"].dtype == torch.float32
