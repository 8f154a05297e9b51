"""Property-based tests: whatever text comes in, the pipeline answers or refuses cleanly, and entity offsets
always name the text they cover; malformed data files load cleanly or fail with a DataError, never partly."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfmtl.config.run_config import DataConfig, TaskConfig
from hfmtl.data.loading import load_task_data
from hfmtl.errors import DataError, InputError
from hfmtl.serve.pipeline import MultiTaskPipeline
from hfmtl.serve.words import split_words

# Letters of several scripts, digits, punctuation, emoji, combining marks, control and odd space characters.
ALPHABET = st.characters(
    codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc"), exclude_characters="\x00"
) | st.sampled_from(list("  \t\n\u200b\u00a0🙂👍🏽é̃Ωжح中"))
TEXTS = st.text(alphabet=ALPHABET, max_size=120) | st.text(alphabet=ALPHABET, min_size=400, max_size=900)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def pipeline(trained):
    return MultiTaskPipeline.from_pretrained(trained / "model", batch_size=8)


@FUZZ
@given(text=TEXTS)
def test_any_text_is_answered_or_refused_and_offsets_slice_it(pipeline, text):
    words = [text[start:end] for start, end in split_words(text)]
    kept = words and any(i is not None for i in pipeline.tokenizer(words, is_split_into_words=True).word_ids())
    if not kept:  # nothing but (zero-width) spaces, or only characters the tokenizer drops (controls, marks)
        with pytest.raises(InputError):
            pipeline(text)
        return
    answer = pipeline(text)
    assert answer["sentiment"]["label"] in ("negative", "positive")
    assert answer["intensity"] == answer["intensity"]  # not NaN
    previous_end = 0
    for entity in answer["ner"]:
        assert previous_end <= entity["start"] < entity["end"] <= len(text)
        assert text[entity["start"] : entity["end"]] == entity["word"]
        previous_end = entity["end"]


GOOD_ROW = {"text": "a fine film", "label": "positive"}
BAD_ROWS = st.one_of(
    st.just("{not json"),
    st.just("[1, 2]"),
    st.just(json.dumps({"text": "no label"})),
    st.just(json.dumps({"label": "positive"})),
    st.just(json.dumps({"text": 42, "label": "positive"})),
    st.just(json.dumps({"text": "   ", "label": "negative"})),
    st.just(json.dumps({"text": "x", "label": "neutral"})),
    st.just(json.dumps({"text": "x", "label": None})),
    st.text(alphabet=ALPHABET, min_size=1, max_size=30).filter(lambda s: s.strip() and "\n" not in s),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(st.just(json.dumps(GOOD_ROW)), BAD_ROWS), min_size=1, max_size=12))
def test_malformed_json_lines_load_cleanly_or_fail_whole(tmp_path_factory, rows):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    task = TaskConfig(name="s", kind="classification", data=DataConfig("train.jsonl"), labels=("negative", "positive"))
    good = sum(row == json.dumps(GOOD_ROW) for row in rows)
    try:
        data = load_task_data(task, folder)
    except DataError as error:
        assert "train.jsonl" in str(error)  # the message names the file
        assert good < len(rows)  # only files with a bad row fail
        return
    assert len(data.splits["train"]) == good == len(rows)  # never a partial load


CONLL_LINES = st.one_of(
    st.sampled_from(["Peter B-PER", "Blackburn I-PER", "visited O", "Paris B-LOC", "", "-DOCSTART- O"]),
    st.sampled_from(["bad", "a b c", "x B-FOO", "   "]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(CONLL_LINES, min_size=1, max_size=15))
def test_malformed_conll_files_load_cleanly_or_fail_whole(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = TaskConfig(
        name="ner",
        kind="token_classification",
        data=DataConfig("train.txt"),
        label_column="ner_tags",
        labels=("O", "B-PER", "I-PER", "B-LOC", "I-LOC"),
    )
    words = [line for line in lines if line.strip() and not line.startswith("-DOCSTART-")]
    try:
        data = load_task_data(task, folder)
    except DataError as error:
        assert "train.txt" in str(error) or "has no rows" in str(error)
        return
    assert sum(len(tags) for tags in data.splits["train"]["tags"]) == len(words)  # every word, none dropped


ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "shift_jis"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(max_size=200), st.text(alphabet=ALPHABET, max_size=120)),
    encoding=ENCODINGS,
    file_format=st.sampled_from(["jsonl", "json", "csv", "tsv", "conll"]),
)
def test_random_bytes_in_any_encoding_load_or_fail_with_a_data_error(tmp_path_factory, body, encoding, file_format):
    """Whatever the bytes, every reader either reads them whole or raises a DataError naming the file."""
    from hfmtl.data.readers import read_rows

    path = tmp_path_factory.mktemp("fuzz") / f"input.{file_format}"
    if isinstance(body, str):
        try:
            body = body.encode(encoding)
        except UnicodeEncodeError:
            return
    path.write_bytes(body)
    try:
        rows = read_rows(path, file_format)
    except DataError as error:
        assert "input." in str(error)
        return
    assert all(isinstance(record, dict) for _, record in rows)


@pytest.fixture(scope="module")
def model_files(trained):
    from safetensors.torch import load_file

    return json.loads((trained / "model" / "config.json").read_text()), load_file(
        trained / "model" / "model.safetensors"
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_model_folder_missing_any_tensor_or_config_key_is_refused(tmp_path_factory, trained, model_files, data):
    """Delete random tensors or config keys: the folder is refused with a ModelLoadError, never loaded with a
    freshly initialised part."""
    import shutil

    from safetensors.torch import save_file

    from hfmtl.errors import ModelLoadError
    from hfmtl.model.folder import load_model_dir

    config, weights = model_files
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(trained / "model", folder)
    if data.draw(st.booleans(), label="delete tensors"):
        names = sorted(weights)
        dropped = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True), label="tensors")
        save_file({n: t for n, t in weights.items() if n not in dropped}, folder / "model.safetensors")
    else:
        broken = json.loads(json.dumps(config))
        where = data.draw(st.sampled_from(["top", "encoder", "task"]), label="where")
        node = broken if where == "top" else broken["encoder"] if where == "encoder" else broken["tasks"][0]
        essential = {
            "top": ["tasks", "encoder", "model_type"],
            "encoder": ["model_type", "hidden_size", "num_hidden_layers", "vocab_size"],
            "task": ["name", "kind", "labels"],
        }[where]
        node.pop(data.draw(st.sampled_from(essential), label="key"), None)
        (folder / "config.json").write_text(json.dumps(broken))
    with pytest.raises(ModelLoadError):
        load_model_dir(folder)
