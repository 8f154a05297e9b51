"""`hfmtl data CONFIG --fetch` end to end: the real huggingface_hub client downloads Parquet files of dataset
repos from the local fake Hub (tests/hub_server.py), laid out as on huggingface.co, and writes the files the
shipped configs read."""

import json

import pytest
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from hub_server import FakeHub

from hfmtl.cli import main
from hfmtl.data.fetch import HUB_FILES, PARQUET

NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def parquet(tmp_path, name, columns, features) -> bytes:
    path = tmp_path / f"{name}.parquet"
    Dataset.from_dict(columns, features=Features(features)).to_parquet(str(path))
    return path.read_bytes()


def serve_sources(hub, tmp_path):
    """The three Hub datasets, a few rows each, as the `datasets` library writes Parquet (features included)."""
    sst2 = parquet(
        tmp_path,
        "sst2",
        {"idx": [0, 1, 2], "sentence": ["a fine film ", "dull , dull ", "warm"], "label": [1, 0, 1]},
        {"idx": Value("int32"), "sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])},
    )
    conll = parquet(
        tmp_path,
        "conll",
        {"id": ["0", "1"], "tokens": [["EU", "rejects"], ["Peter", "Blackburn"]], "ner_tags": [[3, 0], [1, 2]]},
        {"id": Value("string"), "tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=NER))},
    )
    sst = parquet(
        tmp_path,
        "sst",
        {"sentence": ["Yet the act is still charming here .", "Bad ."], "label": [0.72222, 0.5]},
        {"sentence": Value("string"), "label": Value("float32")},
    )
    files = {"stanfordnlp/sst2": {}, "eriktks/conll2003": {}, "stanfordnlp/sst": {}}
    for source in HUB_FILES.values():
        data = {"stanfordnlp/sst2": sst2, "eriktks/conll2003": conll, "stanfordnlp/sst": sst}[source.repo_id]
        files[source.repo_id].setdefault(source.revision, {})[source.path] = data
    for repo_id, branches in files.items():
        hub.add_dataset(repo_id, branches)


def quickstart(tmp_path, data_dir):
    return [
        "configs/quickstart.yaml",
        "--set",
        f"data_dir={data_dir}",
        "--set",
        "encoder.name_or_path=tests/assets/tiny/encoder",
    ]


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_fetch_writes_the_files_the_shipped_config_reads(tmp_path, capsys):
    data_dir = tmp_path / "data"
    with FakeHub() as hub, hub.online():
        serve_sources(hub, tmp_path)
        assert main(["data", *quickstart(tmp_path, data_dir), "--fetch"]) in (None, 0)
    assert read(data_dir / "sst2/train.jsonl")[0] == {"idx": 0, "sentence": "a fine film ", "label": "positive"}
    assert read(data_dir / "conll2003/validation.jsonl")[0] == {
        "tokens": ["EU", "rejects"],
        "ner_tags": ["B-ORG", "O"],
    }
    first, neutral = read(data_dir / "sst/train_5class.jsonl")
    assert first["intensity"] == pytest.approx(0.72222) and (first["label5"], first["label"]) == (3, 1)
    assert (neutral["label5"], neutral["label"]) == (2, None)
    out = capsys.readouterr()
    assert "sentiment" in out.out and "stanfordnlp/sst2" in out.err  # the stats table, and what was fetched
    assert any(
        r.path.startswith(f"/datasets/eriktks/conll2003/resolve/{PARQUET.replace('/', '%2F')}/") for r in hub.requests
    )


def test_fetch_leaves_existing_files_alone(tmp_path, capsys):
    data_dir = tmp_path / "data"
    (data_dir / "sst2").mkdir(parents=True)
    mine = '{"sentence": "my own row", "label": "positive"}\n{"sentence": "and another", "label": "negative"}\n'
    (data_dir / "sst2/train.jsonl").write_text(mine)
    with FakeHub() as hub, hub.online():
        serve_sources(hub, tmp_path)
        main(["data", *quickstart(tmp_path, data_dir), "--fetch"])
    assert (data_dir / "sst2/train.jsonl").read_text() == mine
    assert "sst2/train.jsonl: already there, left as it is" in capsys.readouterr().err


def test_a_missing_shipped_file_says_how_to_fetch_it(tmp_path, capsys):
    assert main(["data", *quickstart(tmp_path, tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert (
        "data file not found" in error
        and "run 'hfmtl data CONFIG --fetch' to download it from the Hugging Face Hub" in error
    )


def test_fetch_names_a_file_it_has_no_source_for(tmp_path, capsys):
    assert main(["data", "configs/tiny.yaml", "--set", f"data_dir={tmp_path}", "--fetch"]) == 2
    assert "no Hub source is known for" in capsys.readouterr().err


def test_a_parquet_file_without_class_names_is_a_clear_error_and_leaves_nothing(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = tmp_path / "data"
    with FakeHub() as hub, hub.online():
        serve_sources(hub, tmp_path)
        # the same columns written by plain pyarrow: no `datasets` features, so ids have no names
        plain = tmp_path / "plain.parquet"
        pq.write_table(pa.Table.from_pylist([{"idx": 0, "sentence": "fine", "label": 1}]), plain)
        sst2 = HUB_FILES["sst2/train.jsonl"]
        files = {source.path: plain.read_bytes() for source in HUB_FILES.values() if source.repo_id == sst2.repo_id}
        hub.add_dataset(sst2.repo_id, {sst2.revision: files})
        assert main(["data", *quickstart(tmp_path, data_dir), "--fetch"]) == 2
    assert "does not have the columns or class names expected" in capsys.readouterr().err
    assert not [p for p in data_dir.rglob("*") if p.is_file()]  # no partial file, no short file


@pytest.mark.parametrize(
    "config",
    [
        "quickstart",
        "mtl-minilm",
        "sharing-hierarchical",
        "sharing-soft",
        "weighting-cagrad",
        "weighting-dwa",
        "weighting-gradnorm",
        "weighting-pcgrad",
        "weighting-uncertainty",
    ],
)
def test_every_file_of_the_configs_the_readme_calls_fetchable_has_a_source(config):
    import yaml

    with open(f"configs/{config}.yaml", encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)["tasks"]
    names = {task["data"][split] for task in tasks for split in ("train", "validation") if split in task["data"]}
    assert names <= set(HUB_FILES), names - set(HUB_FILES)
