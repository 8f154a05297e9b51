"""Readers never reinterpret text silently: quotes, field counts, headers, encodings."""

import pytest

from hfmtl.config.run_config import DataConfig, TaskConfig
from hfmtl.data.loading import load_task_data
from hfmtl.data.readers import iter_rows, read_rows
from hfmtl.errors import DataError


def write(tmp_path, name, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_a_tsv_reads_quotes_as_characters_by_default(tmp_path):
    lines = [
        "sentence\tlabel",
        '"an unclosed quote opens this text\t1',
        *[f'line {i} says "hi"\t0' for i in range(23)],
    ]
    rows = read_rows(write(tmp_path, "x.tsv", "\n".join(lines) + "\n"), "tsv")
    assert len(rows) == 24  # one row per line, not 4 rows swallowing lines
    assert rows[0][1]["sentence"] == '"an unclosed quote opens this text'
    assert rows[1][1]["sentence"] == 'line 0 says "hi"' and rows[1][0].endswith("x.tsv:3")


def test_an_unclosed_csv_quote_is_an_error_at_the_line_where_it_opened(tmp_path):
    path = write(tmp_path, "x.csv", 'text,label\nfine,1\n"never closed,0\nmore,1\nand more,0\n')
    with pytest.raises(DataError, match=r"x\.csv:3: a quoted field opens on this line and does not close on it"):
        read_rows(path, "csv")


def test_fields_spanning_lines_need_the_multiline_opt_in(tmp_path):
    path = write(tmp_path, "x.csv", 'text,label\n"two\nlines",1\nnext,0\n')
    with pytest.raises(DataError, match=r"x\.csv:2: a quoted field opens"):
        read_rows(path, "csv")
    rows = read_rows(path, "csv", multiline=True)
    assert [record["text"] for _, record in rows] == ["two\nlines", "next"]
    assert [where.rsplit(":", 1)[1] for where, _ in rows] == ["2", "4"]


def test_a_goemotions_style_tsv_with_csv_quoting(tmp_path):
    path = write(tmp_path, "g.tsv", 'text\tlabels\n"She said ""no"" twice"\t1\n')
    assert read_rows(path, "tsv", quoting="csv")[0][1]["text"] == 'She said "no" twice'


def test_every_row_with_the_wrong_field_count_is_listed(tmp_path):
    path = write(tmp_path, "x.tsv", "a\tb\n1\t2\n1\n1\t2\t3\n1\t2\n")
    with pytest.raises(DataError) as error:
        read_rows(path, "tsv")
    message = str(error.value)
    assert message.startswith(f"2 rows of {path} cannot be read:")
    assert "x.tsv:3: 1 fields, but the header has 2 (a, b)" in message and "x.tsv:4: 3 fields" in message


def test_a_duplicated_header_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"x\.csv:1: the header names column\(s\) 'text' more than once"):
        read_rows(write(tmp_path, "x.csv", "text,label,text\na,1,b\n"), "csv")


@pytest.mark.parametrize("file_format", ["csv", "tsv", "jsonl"])
def test_a_byte_order_mark_is_accepted(tmp_path, file_format):
    content = {"csv": "text,label\nok,1\n", "tsv": "text\tlabel\nok\t1\n", "jsonl": '{"text": "ok", "label": 1}\n'}
    rows = read_rows(write(tmp_path, f"x.{file_format}", b"\xef\xbb\xbf" + content[file_format].encode()), file_format)
    assert rows[0][1]["text"] == "ok"


@pytest.mark.parametrize("file_format", ["csv", "tsv", "jsonl", "json", "conll"])
def test_text_that_is_not_utf8_names_the_file_and_byte(tmp_path, file_format):
    path = write(tmp_path, "x.data", b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"x\.data: not UTF-8 text: the byte at offset 13 \(0xe9\) cannot be decoded"):
        read_rows(path, file_format)


def test_every_bad_jsonl_line_is_listed(tmp_path):
    path = write(tmp_path, "x.jsonl", '{"a": 1}\nnot json\n[1]\n{"a": 2}\n')
    with pytest.raises(DataError, match=r"2 rows of .*x\.jsonl cannot be read:\n  .*x\.jsonl:2: not valid JSON"):
        read_rows(path, "jsonl")


def test_quoting_options_on_other_formats_are_refused(tmp_path):
    with pytest.raises(DataError, match="data.quoting and data.multiline apply to csv and tsv files, not jsonl"):
        read_rows(write(tmp_path, "x.jsonl", "{}\n"), "jsonl", quoting="csv")


def test_an_empty_ner_word_is_an_error_not_a_lost_tag(tmp_path):
    write(tmp_path, "ner.jsonl", '{"tokens": ["Paris", " ", "is"], "ner_tags": ["B-LOC", "O", "O"]}\n')
    task = TaskConfig(
        name="ner", kind="token_classification", data=DataConfig(train="ner.jsonl"), label_column="ner_tags"
    )
    with pytest.raises(
        DataError, match=r"ner\.jsonl:1: word 2 is empty or only whitespace; every word needs characters"
    ):
        load_task_data(task, tmp_path)


@pytest.mark.parametrize(
    ("file_format", "content"),
    [
        ("jsonl", '{"a": 1}\nnot json\n{"a": 2}\n{"a": 3}\n'),
        ("conll", "EU B-ORG\n\nbad\n\nPeter B-PER\n\nParis B-LOC\n"),
    ],
)
def test_a_row_limit_stops_reading_but_never_drops_a_bad_row_it_passed(tmp_path, file_format, content):
    path = write(tmp_path, "x.data", content)
    assert len(list(iter_rows(path, file_format, limit=1))) == 1  # the bad line after the first row is never read
    with pytest.raises(DataError, match=r"x\.data:(2|3): "):
        list(iter_rows(path, file_format, limit=2))


def test_jsonl_is_read_line_by_line_with_lines_split_at_newlines_only(tmp_path):
    path = write(tmp_path, "x.jsonl", b'{"text": "a\\u2028b\xe2\x80\xa8c"}\r\n\n{"text": "d\xc2\x85e"}\n')
    rows = read_rows(path, "jsonl")
    assert [(where.rsplit(":", 1)[1], row["text"]) for where, row in rows] == [
        ("1", "a\u2028b\u2028c"),
        ("3", "d\x85e"),
    ]


def test_a_bad_byte_after_a_bad_jsonl_line_is_reported_too(tmp_path):
    path = write(tmp_path, "x.jsonl", b'not json\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"(?s)2 rows of .*x\.jsonl:1: not valid JSON.*not UTF-8 text: the byte at"):
        read_rows(path, "jsonl")
