import json

import pytest

from hfmtl.config.run_config import DataConfig, TaskConfig
from hfmtl.data.loading import load_task_data, tokenize_task
from hfmtl.data.readers import read_rows
from hfmtl.errors import ConfigError, DataError


def sentiment(train="train.jsonl", validation=None, **fields):
    return TaskConfig(name="sentiment", kind="classification", data=DataConfig(train, validation), **fields)


def ner(train="train.txt", **fields):
    return TaskConfig(
        name="ner", kind="token_classification", data=DataConfig(train), label_column="ner_tags", **fields
    )


def intensity(train="train.jsonl"):
    return TaskConfig(name="intensity", kind="regression", data=DataConfig(train), label_column="score")


def jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


ROWS = [{"text": "good film", "label": "pos", "score": 0.9}, {"text": "bad film", "label": "neg", "score": 0.1}]


def test_the_same_rows_from_every_file_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl(tmp_path / "train.jsonl", ROWS)
    (tmp_path / "train.json").write_text(json.dumps(ROWS))
    (tmp_path / "train.csv").write_text("text,label,score\ngood film,pos,0.9\nbad film,neg,0.1\n")
    (tmp_path / "train.tsv").write_text("text\tlabel\tscore\ngood film\tpos\t0.9\nbad film\tneg\t0.1\n")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "train.parquet")
    for suffix in ("jsonl", "json", "csv", "tsv", "parquet"):
        data = load_task_data(sentiment(f"train.{suffix}"), tmp_path)
        assert data.labels == ("neg", "pos"), suffix
        assert data.splits["train"]["label"] == [1, 0], suffix
        assert load_task_data(intensity(f"train.{suffix}"), tmp_path).splits["train"]["label"] == [0.9, 0.1]


def test_conll_columns_and_docstart(tmp_path):
    path = tmp_path / "train.txt"
    lines = ["-DOCSTART- -X- -X- O", "", "Peter NNP B-NP B-PER", "Blackburn NNP I-NP I-PER", "", "in IN B-PP O"]
    path.write_text("\n".join([*lines, "Paris NNP B-NP B-LOC", ""]))
    rows = list(read_rows(path, "conll"))
    assert rows[0] == (
        f"{path}:3",
        {
            "tokens": ["Peter", "Blackburn"],
            "ner_tags": ["B-PER", "I-PER"],
            "pos_tags": ["NNP", "NNP"],
            "chunk_tags": ["B-NP", "I-NP"],
        },
    )
    data = load_task_data(ner(), tmp_path)
    assert data.labels == ("O", "B-LOC", "B-PER", "I-PER")  # inferred: O first, then sorted
    assert data.splits["train"]["tags"] == [[2, 3], [0, 1]]


def test_declared_labels_fix_the_ids_and_integers_are_ids(tmp_path):
    jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0}])
    data = load_task_data(sentiment(labels=("negative", "positive")), tmp_path)
    assert data.labels == ("negative", "positive")
    assert data.splits["train"]["label"] == [1, 0]


def test_row_caps(tmp_path):
    jsonl(tmp_path / "train.jsonl", ROWS * 5)
    task = TaskConfig(name="s", kind="classification", data=DataConfig("train.jsonl", max_train_rows=3))
    assert len(load_task_data(task, tmp_path).splits["train"]) == 3


@pytest.mark.parametrize(
    ("task", "content", "message"),
    [
        (sentiment(), None, r"data file not found: .*train\.jsonl \(relative paths resolve against data_dir"),
        (sentiment(), "", r"train\.jsonl: the train split of task 'sentiment' has no rows"),
        (sentiment(), '{"text": "a", "label": 0}\n{"text": "b", "label": 1\n', r"train\.jsonl:2: not valid JSON"),
        (sentiment(), '{"text": "a", "label": 0}\n{"label": 1}\n', r"train\.jsonl:2: no column 'text'"),
        (sentiment(), '{"text": "a", "label": 0}\n{"text": "b"}\n', r"train\.jsonl:2: no column 'label'"),
        (
            sentiment(),
            '{"text": "a", "label": 0}\n{"text": "  ", "label": 1}\n',
            r"train\.jsonl:2: column 'text' is empty",
        ),
        (
            sentiment(labels=("negative", "positive")),
            '{"text": "a", "label": "neutral"}\n',
            r"train\.jsonl:1: label 'neutral' is not in the task's label set \['negative', 'positive'\]",
        ),
        (
            sentiment(labels=("negative", "positive")),
            '{"text": "a", "label": null}\n',
            r"train\.jsonl:1: label None is not a label name or id",
        ),
        (sentiment(), '{"text": "a", "label": 0}\n', r"fewer than two distinct labels"),
        (
            intensity(),
            '{"text": "a", "score": "high"}\n',
            r"train\.jsonl:1: regression target 'score' must be a finite",
        ),
        (intensity(), '{"text": "a", "score": NaN}\n', r"train\.jsonl:1: regression target 'score' must be a finite"),
        (intensity(), '{"text": "a", "score": true}\n', r"train\.jsonl:1: regression target 'score' must be a finite"),
    ],
)
def test_bad_rows_name_file_line_and_expectation(tmp_path, task, content, message):
    if content is not None:
        (tmp_path / "train.jsonl").write_text(content)
    with pytest.raises(DataError, match=message):
        load_task_data(task, tmp_path)


def test_ner_length_mismatch_and_bad_conll_line(tmp_path):
    jsonl(tmp_path / "train.jsonl", [{"tokens": ["EU", "rejects"], "ner_tags": ["B-ORG"]}])
    with pytest.raises(
        DataError, match=r"train\.jsonl:1: 2 words but 1 tags in 'ner_tags'; expected one tag per word"
    ):
        load_task_data(ner("train.jsonl"), tmp_path)
    (tmp_path / "train.txt").write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP\n")
    with pytest.raises(DataError, match=r"train\.txt:2: expected 4 space-separated columns, found 3"):
        load_task_data(ner(), tmp_path)


def test_a_validation_label_unseen_in_training(tmp_path):
    jsonl(tmp_path / "train.jsonl", ROWS)
    jsonl(tmp_path / "dev.jsonl", [{"text": "meh", "label": "neutral"}])
    with pytest.raises(DataError, match=r"dev\.jsonl:1: label 'neutral' is not in the task's label set"):
        load_task_data(sentiment(validation="dev.jsonl"), tmp_path)


def test_csv_row_with_a_missing_field(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,pos\nbad\n")
    with pytest.raises(DataError, match=r"train\.csv:3: 1 fields, but the header has 2 \(text, label\)"):
        load_task_data(sentiment("train.csv"), tmp_path)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        # pandas writes a missing label as an empty cell: it must not become a class named ''
        ("train.csv", "text,label\ngood,pos\nbad,neg\nmeh,\n", r"train\.csv:4: the label is empty"),
        (
            "train.jsonl",
            '{"text": "a", "label": "pos"}\n{"text": "b", "label": null}\n',
            r"train\.jsonl:2: label None",
        ),
        (
            "train.jsonl",
            '{"text": "a", "label": "pos"}\n{"text": "b", "label": true}\n',
            r"train\.jsonl:2: label True",
        ),
        ("train.jsonl", '{"text": "a", "label": 0.5}\n{"text": "b", "label": 1}\n', r"train\.jsonl:1: label 0\.5"),
        # is 0 an id or a third class? The data cannot say, so it is refused rather than guessed
        (
            "train.jsonl",
            '{"text": "a", "label": "positive"}\n{"text": "b", "label": "negative"}\n{"text": "c", "label": 0}\n',
            r"train\.jsonl: task 'sentiment': the training labels mix names \(negative, positive\) and integers \(0\)",
        ),
    ],
)
def test_inferred_labels_refuse_missing_and_ambiguous_values(tmp_path, file, content, message):
    (tmp_path / file).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_task_data(sentiment(file), tmp_path)


def test_whole_number_floats_are_ids_and_unicode_digits_are_not(tmp_path):
    # pandas stores an integer column with a gap as float64, so Parquet/JSON ids may arrive as 1.0
    jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 1.0}, {"text": "b", "label": 0.0}])
    declared = sentiment(labels=("negative", "positive"))
    assert load_task_data(declared, tmp_path).splits["train"]["label"] == [1, 0]
    inferred = load_task_data(sentiment(), tmp_path)
    assert inferred.labels == ("0", "1")
    assert inferred.splits["train"]["label"] == [1, 0]
    for odd in ("\u00b2", "\u0661", "--1"):  # superscript two, Arabic-Indic one: digits to str.isdigit only
        jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": odd}])
        with pytest.raises(DataError, match=r"train\.jsonl:1: label .* is not in the task's label set"):
            load_task_data(declared, tmp_path)


def test_a_multi_label_split_with_no_label_at_all_says_so(tmp_path):
    jsonl(tmp_path / "train.jsonl", [{"text": "a", "labels": []}, {"text": "b", "labels": []}])
    task = TaskConfig(
        name="emotions", kind="multi_label_classification", data=DataConfig("train.jsonl"), label_column="labels"
    )
    with pytest.raises(DataError, match=r"no row of the train split of task 'emotions' has a label"):
        load_task_data(task, tmp_path)


def test_unknown_suffix_asks_for_a_format(tmp_path):
    (tmp_path / "train.data").write_text("x")
    with pytest.raises(DataError, match="set the task's data.format"):
        load_task_data(sentiment("train.data"), tmp_path)


def test_tiny_config_tokenizes_every_task(tiny_config, tiny_tokenizer):
    from hfmtl.data.loading import load_all_tasks

    for name, data in load_all_tasks(tiny_config).items():
        splits = tokenize_task(data, tiny_tokenizer, tiny_config.encoder.max_length)
        assert set(splits) == {"train", "validation"}
        first = splits["train"][0]
        assert first["input_ids"][0] == tiny_tokenizer.cls_token_id, name
        if data.task.kind == "token_classification":
            assert len(first["labels"]) == len(first["input_ids"])
            assert sum(label != -100 for label in first["labels"]) == len(first["tokens"])


def test_inferred_integer_labels_never_read_an_unseen_integer_as_an_id(tmp_path):
    jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 2}, {"text": "c", "label": 10}])
    jsonl(tmp_path / "dev.jsonl", [{"text": "d", "label": 0}])
    with pytest.raises(DataError, match=r"dev\.jsonl:1: label 0 is not in the task's label set \['1', '2', '10'\]"):
        load_task_data(sentiment(validation="dev.jsonl"), tmp_path)


def test_integer_labels_in_csv_sort_like_integers_in_json(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,10\nb,2\nc,1\n")
    jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 10}, {"text": "b", "label": 2}, {"text": "c", "label": 1}])
    from_csv, from_json = (load_task_data(sentiment(f"train.{s}"), tmp_path) for s in ("csv", "jsonl"))
    assert from_csv.labels == from_json.labels == ("1", "2", "10")
    assert from_csv.splits["train"]["label"] == from_json.splits["train"]["label"] == [2, 1, 0]


def test_hub_datasets_keep_their_class_label_names(monkeypatch):
    import datasets

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"])),
        }
    )
    hub_split = datasets.Dataset.from_dict({"tokens": [["Peter", "Pan"]], "ner_tags": [[1, 2]]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id, subset, split: hub_split)
    task = TaskConfig(
        name="ner",
        kind="token_classification",
        data=DataConfig("train", hub_id="org/conll", hub_subset="en"),
        label_column="ner_tags",
    )
    data = load_task_data(task, "unused")
    assert data.labels == ("O", "B-PER", "I-PER")
    assert data.splits["train"]["tags"] == [[1, 2]]


def test_a_hub_row_without_a_label_is_refused_not_read_from_the_end(monkeypatch):
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    # GLUE's test splits mark "no label" with -1; names[-1] would silently make every row 'pos'
    hub_split = datasets.Dataset.from_dict({"sentence": ["fine", "hidden"], "label": [0, -1]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id, subset, split: hub_split)
    task = TaskConfig(
        name="sentiment", kind="classification", data=DataConfig("test", hub_id="org/sst2"), text_column="sentence"
    )
    with pytest.raises(DataError, match=r"org/sst2\[test\] row 2: column 'label' holds label id -1.*no label"):
        load_task_data(task, "unused")


def test_a_task_max_length_cuts_that_task_only(tiny_tokenizer):
    from hfmtl.config.run_config import load_config
    from hfmtl.data.loading import load_all_tasks

    config = load_config("configs/tiny.yaml", ["tasks.ner.max_length=8"])
    data = load_all_tasks(config)
    ner = tokenize_task(data["ner"], tiny_tokenizer, config.encoder.max_length)["train"]
    sentiment = tokenize_task(data["sentiment"], tiny_tokenizer, config.encoder.max_length)["train"]
    whole_ner = tiny_tokenizer(list(ner["tokens"]), is_split_into_words=True)["input_ids"]
    assert max(map(len, ner["input_ids"])) == 8 < max(map(len, whole_ner))
    assert list(sentiment["input_ids"]) == tiny_tokenizer(list(sentiment["text"]))["input_ids"]  # uncut
    message = r"'tasks\.ner\.max_length' must be between 8 and encoder\.max_length \(64\), got 65"
    with pytest.raises(ConfigError, match=message):
        load_config("configs/tiny.yaml", ["tasks.ner.max_length=65"])
