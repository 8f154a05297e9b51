import json

import pytest
import torch

from hfmtl.cli import main
from hfmtl.errors import InputError
from hfmtl.serve.pipeline import MultiTaskPipeline
from hfmtl.serve.words import split_words

TEXTS = [
    "Anna met officials of Reuters in Paris .",
    "Kenji  and   Olga Ivanova visited Hong Kong, then Oslo!",
    "Ünïcode: Tom Berg (Acme Corp) was in São Paulo… 🙂 The film was great.",
    "The plot was awful .",
]


@pytest.fixture(scope="module")
def pipeline(trained):
    return MultiTaskPipeline.from_pretrained(trained / "model", batch_size=2)


def test_answers_have_every_task(pipeline):
    answer = pipeline(TEXTS[0])
    assert set(answer) == {"sentiment", "ner", "intensity", "emotions"}
    assert answer["sentiment"]["label"] in ("negative", "positive") and 0.5 <= answer["sentiment"]["score"] <= 1
    assert isinstance(answer["intensity"], float)
    assert all(
        set(e) == {"label", "score"} and e["label"] in ("anger", "disgust", "joy", "surprise")
        for e in answer["emotions"]
    )
    found = {(e["entity_group"], e["word"]) for e in answer["ner"]}
    assert {e["entity_group"] for e in answer["ner"]} <= {"PER", "ORG", "LOC", "MISC"}
    assert len(found & {("PER", "Anna"), ("ORG", "Reuters"), ("LOC", "Paris")}) >= 2  # a toy model, 400 steps


def test_answers_equal_each_task_s_own_forward(pipeline):
    model, tokenizer = pipeline.model, pipeline.tokenizer
    for text in TEXTS:
        answer = pipeline(text)
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            sentiment = model("sentiment", encoded["input_ids"], encoded["attention_mask"]).logits[0].softmax(-1)
            intensity = model("intensity", encoded["input_ids"], encoded["attention_mask"]).logits[0]
            tags = model("ner", encoded["input_ids"], encoded["attention_mask"]).logits[0].argmax(-1)
            emotions = model("emotions", encoded["input_ids"], encoded["attention_mask"]).logits[0].sigmoid()
        spec = model.config.task_specs[3]
        over = sorted(
            ((name, float(p)) for name, p, t in zip(spec.labels, emotions, spec.thresholds, strict=True) if p >= t),
            key=lambda pair: -pair[1],
        )
        assert [(e["label"], pytest.approx(e["score"], abs=1e-5)) for e in answer["emotions"]] == over
        assert answer["sentiment"]["score"] == pytest.approx(float(sentiment.max()), abs=1e-5)
        assert answer["sentiment"]["label"] == model.config.task_specs[0].labels[int(sentiment.argmax())]
        assert answer["intensity"] == pytest.approx(float(intensity), abs=1e-5)
        first_pieces = [
            i for i, w in enumerate(encoded.word_ids()) if w is not None and w != encoded.word_ids()[i - 1]
        ]
        names = model.config.task_specs[1].labels
        begins = sum(names[int(tags[i])].startswith("B-") for i in first_pieces)
        assert len(answer["ner"]) >= begins  # every B- tag opens an entity


def test_entity_offsets_slice_the_original_text_exactly(pipeline):
    for text, answer in zip(TEXTS, pipeline(TEXTS), strict=True):
        for entity in answer["ner"]:
            assert 0 <= entity["start"] < entity["end"] <= len(text)
            assert text[entity["start"] : entity["end"]] == entity["word"]
    assert any(e["word"].endswith("Ivanova") for e in pipeline(TEXTS[1])["ner"])


def test_an_entity_over_repeated_spaces_is_one_exact_span(trained):
    inside = tagging_every_word(trained, "I-PER")  # every word continues the entity: one span over them all
    text = TEXTS[1]
    (entity,) = inside(text)["ner"]
    assert entity["word"] == text[: text.rindex("!") + 1] == text[entity["start"] : entity["end"]]


def test_one_encoder_pass_per_batch(pipeline):
    calls = []
    handle = pipeline.model.encoder.register_forward_hook(lambda *args: calls.append(1))
    pipeline(TEXTS + TEXTS[:1])  # 5 texts, batches of 2
    handle.remove()
    assert len(calls) == 3


def test_long_texts_are_read_in_overlapping_windows(pipeline):
    sentence = "Anna met officials of Reuters in Paris . "
    text = sentence * 40  # far beyond the 64-token window of the tiny config
    assert len(pipeline.tokenizer(text)["input_ids"]) > 4 * pipeline.max_length
    entities = pipeline(text)["ner"]
    assert all(text[e["start"] : e["end"]] == e["word"] for e in entities)
    starts = [e["start"] for e in entities]
    assert starts == sorted(set(starts))  # windows overlap, yet no word is answered twice
    paris = [e for e in entities if e["word"] == "Paris"]
    assert len(paris) >= 30 and {text[e["start"] - 3 : e["start"]] for e in paris} == {"in "}
    short = pipeline(sentence)
    assert pipeline(text)["sentiment"]["label"] == short["sentiment"]["label"]


def test_batched_and_single_calls_agree(pipeline):
    one_by_one = [pipeline(text) for text in TEXTS]
    together = pipeline(TEXTS)
    for single, batched in zip(one_by_one, together, strict=True):
        assert single["sentiment"]["label"] == batched["sentiment"]["label"]
        assert single["intensity"] == pytest.approx(batched["intensity"], abs=1e-5)
        assert [(e["start"], e["end"]) for e in single["ner"]] == [(e["start"], e["end"]) for e in batched["ner"]]


def test_pair_tasks_read_both_texts_and_the_others_the_first(pipeline):
    model, tokenizer = pipeline.model, pipeline.tokenizer
    first, second = "The film was awful .", "The plot was very good ."
    answer = pipeline((first, second))
    assert answer == pipeline({"text": first, "text_pair": second})
    assert set(answer) == {"sentiment", "ner", "intensity", "emotions", "similarity"}
    assert "similarity" not in pipeline(first)  # a lone text: the pair task has nothing to read
    assert answer["sentiment"] == pipeline(first)["sentiment"]
    encoded = tokenizer(first, second, return_tensors="pt")
    assert encoded["token_type_ids"].sum() > 0  # the second text is marked as such
    with torch.no_grad():
        expected = model("similarity", **encoded).logits[0]
    assert answer["similarity"] == pytest.approx(float(expected), abs=1e-5)
    mixed = pipeline([first, (first, second)])
    assert "similarity" not in mixed[0] and mixed[1]["similarity"] == pytest.approx(answer["similarity"], abs=1e-5)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["x", ("a", "b", "c")], "input 2 is a tuple of 3; a sentence pair is"),
        ({"txt": "a"}, r"the input is a dict, so it needs the key 'text' \(and 'text_pair'\), got \['txt'\]"),
        (("fine", " "), "the input's text_pair is empty or only whitespace"),
        (["fine", ("fine", 3)], "input 2's text_pair is int 3, not a string"),
    ],
)
def test_unusable_pairs_are_a_clear_error(pipeline, inputs, message):
    with pytest.raises(InputError, match=message):
        pipeline(inputs)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("", "the text is empty or only whitespace"),
        (" \n\t ", "the text is empty or only whitespace"),
        (["fine", ""], "text 2 is empty or only whitespace"),
        (["fine", 42], "text 2 is int 42, not a string"),
        ("\u200b\u200b", "the text has no words, only invisible separators"),
        (["fine", "\ufeff \u200b\u2060"], "text 2 has no words, only invisible separators"),
        (["fine", "\u0301"], "text 2 has no characters the tokenizer keeps"),  # a lone combining accent
        ([], "no texts to predict on"),
    ],
)
def test_unusable_input_is_a_clear_error(pipeline, texts, message):
    with pytest.raises(InputError, match=message):
        pipeline(texts)


@pytest.mark.parametrize("inputs", [None, 5, b"hello", 2.5])
def test_an_input_that_is_no_text_is_a_clear_error(pipeline, inputs):
    with pytest.raises(InputError, match=rf"the input is {type(inputs).__name__} .*; give a string"):
        pipeline(inputs)


def test_a_model_without_pair_tasks_refuses_a_pair_rather_than_read_it_as_two_texts(pipeline):
    single = MultiTaskPipeline(pipeline.model, pipeline.tokenizer)
    single.specs = {name: spec for name, spec in single.specs.items() if not spec.pairs}
    with pytest.raises(InputError, match=r"a \(text, text_pair\) tuple is a sentence pair, but this model has no"):
        single(("A man plays a flute.", "A man plays music."))
    assert len(single(["A man plays a flute.", "A man plays music."])) == 2  # a list is a batch


def test_the_window_overlap_fits_a_model_trained_on_short_windows(pipeline):
    text = " ".join(["Anna met officials of Reuters in Paris ."] * 5)
    short = MultiTaskPipeline(pipeline.model, pipeline.tokenizer, max_length=16)
    assert short.stride == 7  # half of the 14 word tokens a window holds (32 would not fit)
    assert len(short(text)["ner"]) >= 5
    for stride in (-1, 14):
        with pytest.raises(InputError, match=rf"stride must be at least 0 and less than the 14 .* got {stride}"):
            MultiTaskPipeline(pipeline.model, pipeline.tokenizer, max_length=16, stride=stride)


def test_predict_output_is_replaced_only_when_every_answer_is_written(trained, tmp_path, capsys, monkeypatch):
    mine = '{"mine": 1}\n'
    (tmp_path / "out.jsonl").write_text(mine)
    (tmp_path / "bad.txt").write_text("\n".join([*TEXTS, "\u200b", "fine"]) + "\n")
    command = ["predict", str(trained / "model"), "--batch-size", "1", "--output", str(tmp_path / "out.jsonl")]
    assert main([*command, "--input", str(tmp_path / "bad.txt")]) == 2  # checked before the model loads
    assert "bad.txt:5: the text has no words, only invisible separators" in capsys.readouterr().err
    (tmp_path / "in.txt").write_text("\n".join(TEXTS * 3) + "\n")  # 12 texts: two calls of 8 at batch size 1
    answer = MultiTaskPipeline.__call__
    calls = []

    def fails_on_the_second_call(self, inputs):
        calls.append(len(inputs))
        if len(calls) == 2:
            raise RuntimeError("killed mid-way")
        return answer(self, inputs)

    monkeypatch.setattr(MultiTaskPipeline, "__call__", fails_on_the_second_call)
    with pytest.raises(RuntimeError, match="killed mid-way"):
        main([*command, "--input", str(tmp_path / "in.txt")])
    assert calls == [8, 4] and (tmp_path / "out.jsonl").read_text() == mine  # 8 answers were written, elsewhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "in.txt", "out.jsonl"]  # and removed
    monkeypatch.undo()
    missing = ["predict", str(trained / "model"), "--input", str(tmp_path / "in.txt"), "--output"]
    assert main([*missing, str(tmp_path / "no" / "out.jsonl")]) == 2
    assert "the folder " in capsys.readouterr().err and not (tmp_path / "no").exists()


def test_a_text_only_the_model_can_refuse_is_named_by_its_line(trained, tmp_path, capsys):
    # an escape character is a word to the splitter, but the tokenizer keeps nothing of it: known only once
    # the model is loaded, and still reported with its line, not as "text 3" of some chunk
    (tmp_path / "in.txt").write_text("\n".join([*TEXTS, "\x1b", "fine"]) + "\n")
    assert main(["predict", str(trained / "model"), "--input", str(tmp_path / "in.txt"), "--batch-size", "1"]) == 2
    assert "in.txt:5: the text has no characters the tokenizer keeps" in capsys.readouterr().err


def test_predict_reads_text_lines_from_standard_input(trained, monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeff" + "\r\n".join(TEXTS[:2]) + "\n\n"))
    assert main(["predict", str(trained / "model"), "--input", "-"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == TEXTS[:2]
    monkeypatch.setattr("sys.stdin", io.StringIO("fine\n \u200b\n"))
    assert main(["predict", str(trained / "model"), "--input", "-"]) == 2
    assert "<stdin>:2: the text has no words" in capsys.readouterr().err


def test_a_closed_output_pipe_ends_quietly(monkeypatch):
    from hfmtl import commands

    def reader_went_away(args):
        raise BrokenPipeError  # `hfmtl predict ... | head -1`

    monkeypatch.setattr(commands, "predict", reader_went_away)
    assert main(["predict", "some-model", "a text"]) == 141


def test_bf16_inference_agrees_on_labels(trained):
    if not torch.cuda.is_available() and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no bf16 support")
    full = MultiTaskPipeline.from_pretrained(trained / "model")(TEXTS)
    half = MultiTaskPipeline.from_pretrained(trained / "model", dtype=torch.bfloat16)(TEXTS)
    assert [a["sentiment"]["label"] for a in full] == [a["sentiment"]["label"] for a in half]
    assert [a["intensity"] for a in half] == pytest.approx([a["intensity"] for a in full], abs=0.05)


def test_predict_command_on_arguments_and_files(trained, tmp_path, capsys):
    assert main(["predict", str(trained / "model"), TEXTS[0], TEXTS[3]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == [TEXTS[0], TEXTS[3]] and "ner" in lines[0]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in TEXTS))
    args = ["predict", str(trained / "model"), "--input", str(tmp_path / "in.jsonl"), "--text-field", "body"]
    assert main([*args, "--output", str(tmp_path / "out.jsonl")]) == 0
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["text"] for line in written] == TEXTS
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n\n")
    assert main(["predict", str(trained / "model"), "--input", str(tmp_path / "in.txt")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(TEXTS)


def test_a_model_folder_without_weights_or_config(trained, tmp_path):
    import shutil

    from hfmtl.errors import ModelLoadError

    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")  # a pickle is never loaded instead
    with pytest.raises(ModelLoadError, match="has no model.safetensors"):
        MultiTaskPipeline.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="is not a model folder: it has no config.json"):
        MultiTaskPipeline.from_pretrained(folder)


def test_concurrent_calls_from_several_threads_give_the_serial_answers(pipeline):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"{text} ({i})" for i, text in enumerate(TEXTS * 4)]
    serial = [pipeline(text) for text in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(pipeline, texts))
    for alone, together in zip(serial, concurrent, strict=True):
        assert alone["sentiment"] == together["sentiment"] and alone["ner"] == together["ner"]
        assert alone["intensity"] == pytest.approx(together["intensity"], abs=1e-6)


def test_a_pickle_only_folder_loads_only_with_the_explicit_flag(trained, tmp_path):
    import shutil

    import torch as torch_module
    from safetensors.torch import load_file

    from hfmtl.errors import ModelLoadError

    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    weights = load_file(folder / "model.safetensors")
    torch_module.save(weights, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="has no model.safetensors"):
        MultiTaskPipeline.from_pretrained(folder)
    opted_in = MultiTaskPipeline.from_pretrained(folder, allow_pickle=True)
    assert opted_in(TEXTS) == MultiTaskPipeline.from_pretrained(trained / "model")(TEXTS)


ISSUE_TEXTS = [
    "U.S. President Barack Obama met Jean-Pierre Raffarin in St. Louis-based Anheuser-Busch's office.",
    "Germany's Kohl paid $1,000 (3.5%) to Tom Berg, who doesn't live in São Paulo… 🙂",
]


def tagging_every_word(trained, tag: str) -> MultiTaskPipeline:
    """A pipeline whose NER head gives every token `tag`: its entities show the words it reads."""
    pipeline = MultiTaskPipeline.from_pretrained(trained / "model", max_length=16, stride=4)
    head, labels = pipeline.model.heads["ner"].out, pipeline.specs["ner"].labels
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[labels.index(tag)] = 10.0
    return pipeline


def test_ner_reads_the_words_training_saw(trained):
    begins = tagging_every_word(trained, "B-PER")
    for text in ISSUE_TEXTS:
        assert [e["word"] for e in begins(text)["ner"]] == [text[start:end] for start, end in split_words(text)]
    assert [e["word"] for e in begins(ISSUE_TEXTS[0])["ner"]][:7] == [
        "U.S.",
        "President",
        "Barack",
        "Obama",
        "met",
        "Jean-Pierre",
        "Raffarin",
    ]
    insides = tagging_every_word(trained, "I-PER")  # one entity, from the first word's start to the last's end
    text = "  \t" + ISSUE_TEXTS[0] + " \u200b\n"
    assert [(e["start"], e["end"], e["word"]) for e in insides(text)["ner"]] == [
        (3, 3 + len(ISSUE_TEXTS[0]), ISSUE_TEXTS[0])
    ]


def test_long_texts_are_read_word_by_word_across_windows(trained):
    begins = tagging_every_word(trained, "B-PER")  # windows of 16 tokens: words cross window edges
    text = " ".join(ISSUE_TEXTS * 6)
    entities = begins(text)["ner"]
    assert [(e["start"], e["end"]) for e in entities] == split_words(text)
    assert all(text[e["start"] : e["end"]] == e["word"] for e in entities)


def test_entities_start_and_end_on_word_boundaries(pipeline):
    for text in TEXTS + ISSUE_TEXTS:
        spans = split_words(text)
        starts, ends = {start for start, _ in spans}, {end for _, end in spans}
        for entity in pipeline(text)["ner"]:
            assert entity["start"] in starts and entity["end"] in ends, entity
            assert entity["word"] == text[entity["start"] : entity["end"]]


def test_words_give_a_wordpiece_tokenizer_the_raw_text_s_ids_but_for_clitics(pipeline):
    """Why the sequence-level tasks can read the NER pass: for them the input is unchanged (see `_windows`)."""
    tokenizer = pipeline.tokenizer

    def both_ways(text):
        words = [text[start:end] for start, end in split_words(text)]
        return tokenizer(words, is_split_into_words=True)["input_ids"], tokenizer(text)["input_ids"]

    for text in ISSUE_TEXTS[:1] + TEXTS:
        as_words, as_text = both_ways(text)
        assert as_words == as_text
    as_words, as_text = both_ways("I don't")  # `do` `n't` (as in CoNLL and SST) vs `don` `'` `t`
    assert as_words != as_text and len(as_words) == len(as_text) + 1


def test_options_may_come_before_the_texts(trained, capsys):
    assert (
        main(["predict", str(trained / "model"), "--batch-size", "1", TEXTS[0], "--dtype", "float32", TEXTS[3]]) == 0
    )
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == [TEXTS[0], TEXTS[3]]
    with pytest.raises(SystemExit):  # an unknown option is still refused, not read as a text
        main(["predict", str(trained / "model"), TEXTS[0], "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_text_that_is_not_utf8_is_named_not_a_tokenizer_crash(trained, monkeypatch, capsys):
    import io

    pipeline = MultiTaskPipeline.from_pretrained(trained / "model")
    # A command-line argument with the byte 0xe9 (latin-1 "é") arrives in Python as the code point U+DCE9.
    with pytest.raises(InputError, match=r"text 2 is not valid unicode: byte 0xe9 at character 4 is not UTF-8"):
        pipeline([TEXTS[0], "caf\udce9"])
    assert main(["predict", str(trained / "model"), "caf\udce9"]) == 2
    assert "the text is not valid unicode: byte 0xe9" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("fine\ncaf\udce9\n"))
    assert main(["predict", str(trained / "model"), "--input", "-"]) == 2
    assert "<stdin>:2: byte 0xe9 at character 4 is not UTF-8 text" in capsys.readouterr().err


def test_a_missing_model_path_is_named_and_a_hub_id_that_cannot_be_fetched_too(capsys):
    assert main(["predict", "runs/quickstart/model", "a text"]) == 2  # two slashes: never a Hub repo id
    assert "model folder 'runs/quickstart/model' does not exist" in capsys.readouterr().err
    assert main(["predict", "nobody/no-such-model", "a text"]) == 2  # offline here: the download cannot happen
    assert "'nobody/no-such-model' is not a local folder, and the Hub repo of that name could not be downloaded" in (
        capsys.readouterr().err
    )


def test_ctrl_c_and_sigterm_end_the_command_through_its_cleanups(monkeypatch, capsys):
    import os
    import signal

    from hfmtl import commands

    cleaned = []

    def killed_while_writing(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # what `timeout` or a scheduler sends
        finally:
            cleaned.append(True)  # an atomic write removes its temporary file here

    monkeypatch.setattr(commands, "predict", killed_while_writing)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["predict", "some-model", "a text"]) == 130
    assert cleaned == [True] and "hfmtl: interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # the command's handler does not outlive it


def test_an_output_that_cannot_be_written_is_one_line_not_a_traceback(trained, tmp_path, monkeypatch, capsys):
    assert main(["predict", str(trained / "model"), "a text", "--output", str(tmp_path)]) == 2
    assert f"--output {tmp_path} is a folder; give the path of the JSON lines file" in capsys.readouterr().err
    from hfmtl import commands

    def refused(args):
        raise PermissionError(13, "Permission denied", "/srv/reports/report.json")  # a read-only folder, as root too

    monkeypatch.setattr(commands, "evaluate", refused)
    assert main(["evaluate", str(trained / "model")]) == 2
    assert "hfmtl: error: /srv/reports/report.json: Permission denied" in capsys.readouterr().err
