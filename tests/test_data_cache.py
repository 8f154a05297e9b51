"""The cache of checked and tokenized splits: hit on unchanged inputs, miss on any changed one, never a
half-written entry."""

import dataclasses
import json

import pytest

from hfmtl.config.run_config import DataConfig, TaskConfig
from hfmtl.data import loading
from hfmtl.data.loading import load_task_data, tokenize_task
from hfmtl.errors import DataError
from hfmtl.tasks.classification import CLASSIFICATION as classification


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("HFMTL_CACHE", str(root))
    return root


@pytest.fixture
def calls(monkeypatch):
    """How often rows are checked and tokenized (the work a cache hit skips)."""
    counts = {"make_example": 0, "tokenize": 0}

    def counted(name):
        original = getattr(classification, name)

        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(classification, name, wrapper)

    counted("make_example")
    counted("tokenize")
    return counts


def sentiment(train="train.jsonl", **data):
    return TaskConfig(name="sentiment", kind="classification", data=DataConfig(train, **data))


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


ROWS = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"}, {"text": "fine", "label": "pos"}]


def test_a_second_load_reads_the_cache_memory_mapped(tmp_path, cache, calls, tiny_tokenizer):
    write_rows(tmp_path / "train.jsonl", ROWS)
    first = tokenize_task(load_task_data(sentiment(), tmp_path), tiny_tokenizer, 32)["train"]
    assert calls == {"make_example": 3, "tokenize": 1}
    again = load_task_data(sentiment(), tmp_path)
    second = tokenize_task(again, tiny_tokenizer, 32)["train"]
    assert calls == {"make_example": 3, "tokenize": 1}  # nothing checked or tokenized again
    assert again.labels == ("neg", "pos")
    assert second["input_ids"] == first["input_ids"] and second["labels"] == [1, 0, 1]
    assert all(str(cache) in f["filename"] for f in second.cache_files)  # an Arrow file, not rows in memory


def test_a_selection_of_cached_rows_is_tokenized_as_selected(tmp_path, tiny_tokenizer):
    write_rows(tmp_path / "train.jsonl", ROWS)
    data = load_task_data(sentiment(), tmp_path)
    assert len(tokenize_task(data, tiny_tokenizer, 32)["train"]) == 3
    first_two = dataclasses.replace(data, splits={"train": data.splits["train"].select(range(2))})
    assert tokenize_task(first_two, tiny_tokenizer, 32)["train"]["labels"] == [1, 0]


def test_a_file_rewritten_at_once_with_the_same_size_is_read_again(tmp_path, calls):
    path = tmp_path / "train.jsonl"
    write_rows(path, ROWS)
    assert load_task_data(sentiment(), tmp_path).splits["train"]["label"] == [1, 0, 1]
    write_rows(
        path, [{**row, "label": {"pos": "neg", "neg": "pos"}[row["label"]]} for row in ROWS]
    )  # same bytes count
    assert load_task_data(sentiment(), tmp_path).splits["train"]["label"] == [0, 1, 0]
    assert calls["make_example"] == 6


def test_another_tokenizer_length_limit_or_task_setting_misses(tmp_path, calls, tiny_tokenizer, word_tokenizer):
    write_rows(tmp_path / "train.jsonl", ROWS)
    data = load_task_data(sentiment(), tmp_path)
    tiny = tokenize_task(data, tiny_tokenizer, 32)["train"]["input_ids"]
    words = tokenize_task(data, word_tokenizer, 32)["train"]["input_ids"]
    short = tokenize_task(data, tiny_tokenizer, 3)["train"]["input_ids"]
    assert calls["tokenize"] == 3 and tiny != words and max(map(len, short)) == 3
    load_task_data(sentiment(max_train_rows=2), tmp_path)
    load_task_data(
        TaskConfig(name="sentiment", kind="classification", data=DataConfig("train.jsonl"), labels=("pos", "neg")),
        tmp_path,
    )
    assert calls["make_example"] == 3 + 2 + 3


def test_bad_rows_leave_nothing_in_the_cache(tmp_path, cache, calls):
    write_rows(tmp_path / "train.jsonl", [*ROWS, {"text": "", "label": "pos"}, {"label": "neg"}])
    with pytest.raises(DataError, match=r"2 rows of task 'sentiment' cannot be used:\n  .*train\.jsonl:4"):
        load_task_data(sentiment(), tmp_path)
    assert not list(cache.rglob("*.arrow")) and not list(cache.rglob("*.partial"))
    with pytest.raises(DataError, match="2 rows of task 'sentiment' cannot be used"):  # checked again, not cached
        load_task_data(sentiment(), tmp_path)


def test_a_file_rewritten_while_it_is_read_is_refused_and_not_cached(tmp_path, cache, monkeypatch):
    write_rows(tmp_path / "train.jsonl", ROWS)
    original = loading.iter_rows

    def rewritten_midway(path, *args, **kwargs):
        for n, row in enumerate(original(path, *args, **kwargs)):
            if n == 1:  # another process rewrites the file after the digest naming the entry was taken
                write_rows(path, [{"text": "other", "label": "neg"}, {"text": "new", "label": "pos"}])
            yield row

    monkeypatch.setattr(loading, "iter_rows", rewritten_midway)
    with pytest.raises(DataError, match=r"train\.jsonl changed while it was being read; run again"):
        load_task_data(sentiment(), tmp_path)
    assert not list(cache.rglob("*.arrow")) and not list(cache.rglob("*.partial"))
    monkeypatch.setattr(loading, "iter_rows", original)
    assert load_task_data(sentiment(), tmp_path).splits["train"]["text"] == ["other", "new"]


def test_a_damaged_cache_entry_is_not_trusted_blindly(tmp_path, cache, tiny_tokenizer):
    write_rows(tmp_path / "train.jsonl", ROWS)
    load_task_data(sentiment(), tmp_path)
    tokenize_task(load_task_data(sentiment(), tmp_path), tiny_tokenizer, 32)
    for damaged in [*cache.rglob("labels.json"), *cache.rglob("*.arrow")]:  # cut short by another tool or a full disk
        damaged.write_bytes(damaged.read_bytes()[:5])
    data = load_task_data(sentiment(), tmp_path)
    assert data.labels == ("neg", "pos") and data.splits["train"]["label"] == [1, 0, 1]
    assert tokenize_task(data, tiny_tokenizer, 32)["train"]["labels"] == [1, 0, 1]


def test_a_cache_file_cut_at_a_record_batch_is_not_read_as_fewer_rows(tmp_path, cache, calls, tiny_tokenizer):
    from hfmtl.data.cache import write_dataset

    write_rows(tmp_path / "train.jsonl", ROWS * 2)
    data = load_task_data(sentiment(), tmp_path)
    tokenize_task(data, tiny_tokenizer, 32)
    # An Arrow stream that ends after its first record batches opens without error, with fewer rows: what a
    # power loss before the data reached the disk, or a partial copy of the cache, leaves behind.
    for whole in cache.rglob("*.arrow"):
        shorter = write_dataset(tmp_path / "short" / whole.name, ({"text": "x", "label": 0} for _ in range(2)))
        assert len(shorter) == 2
        whole.write_bytes((tmp_path / "short" / whole.name).read_bytes())
    checked = calls["make_example"]
    again = load_task_data(sentiment(), tmp_path)
    assert len(again.splits["train"]) == 6 and calls["make_example"] == checked + 6  # read and checked anew
    assert len(tokenize_task(again, tiny_tokenizer, 32)["train"]) == 6


def test_the_cache_lives_under_hf_home_unless_told(monkeypatch, tmp_path):
    monkeypatch.delenv("HFMTL_CACHE")
    import datasets.config

    assert loading.cache_root() == datasets.config.HF_DATASETS_CACHE / "hfmtl"


def test_a_cache_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch):
    write_rows(tmp_path / "train.jsonl", ROWS)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HFMTL_CACHE", str(blocker / "cache"))
    with pytest.raises(
        DataError, match=r"cannot write the data cache in .*not-a-folder/cache/.*; set HFMTL_CACHE to a"
    ):
        load_task_data(sentiment(), tmp_path)


def test_cache_files_hold_few_large_record_batches(tmp_path, tiny_tokenizer):
    """Each record batch of a memory-mapped file costs resident pages to open and to read a column of (the
    kernel maps ~64 KB around each), so the cache writes WRITER_BATCH_ROWS rows per batch, not datasets' 1,000."""
    import pyarrow as pa

    from hfmtl.data.cache import WRITER_BATCH_ROWS

    rows = 2 * WRITER_BATCH_ROWS + 1
    write_rows(
        tmp_path / "train.jsonl", [{"text": f"film {i}", "label": "pos" if i % 2 else "neg"} for i in range(rows)]
    )
    data = load_task_data(sentiment(), tmp_path)
    tokenized = tokenize_task(data, tiny_tokenizer, 32)["train"]
    for dataset in (data.splits["train"], tokenized):
        with pa.memory_map(dataset.cache_files[0]["filename"]) as source:
            batches = [batch.num_rows for batch in pa.ipc.open_stream(source)]
        assert batches == [WRITER_BATCH_ROWS, WRITER_BATCH_ROWS, 1]
    assert tokenized["labels"][:3] == [0, 1, 0] and len(tokenized) == rows
