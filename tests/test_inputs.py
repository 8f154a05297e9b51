"""Inputs are read as what they are: predict files by suffix, evaluate's tasks, data and baseline."""

import json

import pytest
import yaml

from hfmtl.cli import main
from hfmtl.errors import ConfigError, DataError
from hfmtl.serve.predict_files import located_texts


def read_texts(path, text_field, text_pair_field=None):
    return [item for _, item in located_texts(path, text_field, text_pair_field)]


TEXTS = ["A warm, funny film.", "Jane Smith hated it.", "Paris in the rain"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("in.txt", "\n".join(TEXTS) + "\n\n"),
        ("in.jsonl", "".join(json.dumps({"body": t}) + "\n" for t in TEXTS)),
        ("in.json", json.dumps(TEXTS)),
        ("objects.json", json.dumps([{"body": t} for t in TEXTS])),
        ("in.csv", "id,body\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(TEXTS))),
        ("in.tsv", "id\tbody\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(TEXTS))),
    ],
)
def test_every_input_format_gives_its_texts_and_never_a_header(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    assert read_texts(tmp_path / name, "body") == TEXTS


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", "\n \n", r"empty\.txt: no texts to predict on"),
        ("in.md", "# a", r"--input reads \.txt, \.jsonl, \.json, \.csv, \.tsv files, not '\.md'"),
        ("in.csv", "id,text\n1,fine\n2,\n", r"in\.csv:3: the text is empty or only whitespace"),
        ("in.csv", "id,words\n1,fine\n", r"in\.csv:2: expected an object with a text field 'text'"),
        ("in.json", '{"text": "one"}', r"in\.json: expected a JSON list of texts"),
        ("in.json", '["one", 2]', r"in\.json\[2\]: expected an object with a text field 'text'"),
    ],
)
def test_unusable_inputs_name_the_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_texts(tmp_path / name, "text")


def test_predict_reads_a_csv_by_its_column(trained, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(TEXTS)))
    assert main(["predict", str(trained / "model"), "--input", str(tmp_path / "in.csv")]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == TEXTS


def test_predict_reads_sentence_pairs_from_two_fields(trained, tmp_path, capsys):
    pairs = [("The film was awful .", "The plot was good ."), ("The cast was fine .", "The story was dull .")]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps({"a": a, "b": b}) + "\n" for a, b in pairs))
    argv = ["predict", str(trained / "model"), "--input", str(tmp_path / "pairs.jsonl"), "--text-field", "a"]
    assert main([*argv, "--text-pair-field", "b"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["text"], line["text_pair"]) for line in lines] == pairs
    assert all(isinstance(line["similarity"], float) and "sentiment" in line for line in lines)
    assert main(argv) == 0  # without the pair field: single texts, and no pair task answers
    assert all("similarity" not in json.loads(line) for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.txt", "a\n", r"in\.txt: --text-pair-field needs a file with fields"),
        (
            "in.jsonl",
            '{"a": "x"}\n',
            r"in\.jsonl:1: expected an object with a text field 'b' \(see --text-pair-field\)",
        ),
        ("in.csv", "a,b\nx, \n", r"in\.csv:2: the text_pair is empty or only whitespace"),
    ],
)
def test_unusable_pair_inputs_name_the_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        read_texts(tmp_path / name, "a", "b")


def test_evaluate_refuses_a_repeated_data_option(trained, tmp_path, capsys):
    argv = ["evaluate", str(trained / "model"), "--data", "ner=a.conll", "--data", "ner=b.conll", "--debug"]
    with pytest.raises(ConfigError, match=r"--data gives task 'ner' twice \(a\.conll and b\.conll\)"):
        main(argv)


def test_evaluate_refuses_config_tasks_the_model_lacks(trained, tmp_path):
    from hfmtl.evaluation.evaluate_model import evaluate_model_dir

    config = yaml.safe_load((trained / "run_config.yaml").read_text())
    next(task for task in config["tasks"] if task["name"] == "intensity")["name"] = "strength"
    config["sampling"]["weights"]["strength"] = config["sampling"]["weights"].pop("intensity")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"the config names task\(s\) strength that the model does not have"):
        evaluate_model_dir(trained / "model", config_path=tmp_path / "other.yaml")
