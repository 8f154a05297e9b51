"""Fetching the shipped configs' data from the Hugging Face Hub: SST-2, CoNLL-2003 and SST with its sentiment
scores, downloaded as the Hub's Parquet files and written into `data_dir` in the layout the configs read
(`sst2/train.jsonl`, `conll2003/train.jsonl`, `sst/train_5class.jsonl`, and their validation splits).

A file that is already there is never replaced. Class ids are written as their names (the names come from
the Parquet file's `datasets` features), so the rows read the same as the local copies do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfmtl.atomic import atomic_open
from hfmtl.config.run_config import RunConfig
from hfmtl.data.loading import resolve_data_path
from hfmtl.errors import DataError

ClassNames = dict[str, list[str]]


@dataclass(frozen=True)
class HubFile:
    """Where one local data file comes from: a Parquet file of a Hub dataset repo, and how its rows become
    the local file's rows."""

    repo_id: str
    revision: str
    path: str
    row: Callable[[dict[str, Any], ClassNames], dict[str, Any]]


def _sst2_row(record: dict[str, Any], names: ClassNames) -> dict[str, Any]:
    return {"idx": record["idx"], "sentence": record["sentence"], "label": names["label"][record["label"]]}


def _conll_row(record: dict[str, Any], names: ClassNames) -> dict[str, Any]:
    tags = ("pos_tags", "chunk_tags", "ner_tags")
    return {"tokens": record["tokens"], **{t: [names[t][i] for i in record[t]] for t in tags if t in record}}


def _sst_row(record: dict[str, Any], names: ClassNames) -> dict[str, Any]:
    """The sentence-level SST row: `intensity` is the sentence's sentiment value in [0, 1]; `label5` bins it
    at the SST README's cut-offs .2/.4/.6/.8; `label` is 0 or 1 (None for the neutral bin)."""
    value = float(record["label"])
    label5 = sum(value > cut for cut in (0.2, 0.4, 0.6, 0.8))
    label = None if label5 == 2 else int(label5 > 2)
    return {"text": record["sentence"], "label": label, "label5": label5, "intensity": value}


PARQUET = "refs/convert/parquet"  # the Hub's own Parquet export of datasets that ship a loading script
CONLL = "eriktks/conll2003"
HUB_FILES: dict[str, HubFile] = {
    "sst2/train.jsonl": HubFile("stanfordnlp/sst2", "main", "data/train-00000-of-00001.parquet", _sst2_row),
    "sst2/validation.jsonl": HubFile("stanfordnlp/sst2", "main", "data/validation-00000-of-00001.parquet", _sst2_row),
    "conll2003/train.jsonl": HubFile(CONLL, PARQUET, "conll2003/train/0000.parquet", _conll_row),
    "conll2003/validation.jsonl": HubFile(
        "eriktks/conll2003", PARQUET, "conll2003/validation/0000.parquet", _conll_row
    ),
    "sst/train_5class.jsonl": HubFile("stanfordnlp/sst", PARQUET, "default/train/0000.parquet", _sst_row),
    "sst/validation_5class.jsonl": HubFile("stanfordnlp/sst", PARQUET, "default/validation/0000.parquet", _sst_row),
}
"""The data files of the shipped three-task configs (quickstart, mtl-minilm, the sharing and weighting ones),
by their path under data_dir. GoEmotions, STS-B and the SST phrase files (`goemotions/`, `stsb/`,
`sst/train.jsonl`) have no Hub source here: the local copies come from the original releases, whose columns
the Hub's copies do not all have."""


def fetch_command(config_path: str) -> str:
    return f"hfmtl data {config_path} --fetch"


def fetch_data(config: RunConfig, report: Callable[[str], None]) -> list[Path]:
    """Download every data file the config names that is missing and has a Hub source; returns those written.
    A missing file with no Hub source is an error naming it (nothing is downloaded then)."""
    wanted: dict[Path, HubFile] = {}
    present, unknown = [], []
    for task in config.tasks:
        if task.data.hub_id:
            continue  # read from the Hub at run time already
        for name in (task.data.train, task.data.validation):
            if name is None:
                continue
            path = resolve_data_path(config.data_dir, name)
            if path.is_file():
                present.append(path)
            elif name in HUB_FILES:
                wanted[path] = HUB_FILES[name]
            else:
                unknown.append(str(path))
    if unknown:
        raise DataError(
            f"no Hub source is known for {', '.join(unknown)}; --fetch knows the files of the shipped "
            f"SST-2 / CoNLL-2003 / SST intensity configs ({', '.join(HUB_FILES)}) under data_dir; put other "
            "files there yourself, or read a Hub dataset directly with the task's data.hub_id"
        )
    for path in present:
        report(f"{path}: already there, left as it is")
    for path, source in wanted.items():
        report(f"{path}: from {source.repo_id} ({source.revision}) {source.path}")
        write_rows(path, converted_rows(source))
    return list(wanted)


def converted_rows(source: HubFile) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq
    from huggingface_hub import hf_hub_download

    try:
        local = hf_hub_download(source.repo_id, source.path, repo_type="dataset", revision=source.revision)
    except Exception as error:  # noqa: BLE001 - offline, not found, no access: all mean "cannot download"
        raise DataError(
            f"could not download {source.path} of the Hub dataset {source.repo_id} ({source.revision}): {error}"
        ) from None
    table = pq.read_table(local)
    names = class_names(table.schema.metadata or {})
    try:
        return [source.row(record, names) for record in table.to_pylist()]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise DataError(
            f"{source.repo_id} ({source.revision}) {source.path} does not have the columns or class names "
            f"expected (the `datasets` features in its Parquet metadata; missing or out of range: {error!r})"
        ) from None


def class_names(metadata: dict[bytes, bytes]) -> ClassNames:
    """Column → class names of the ClassLabel columns (or lists of them) in a `datasets` Parquet file."""
    info = json.loads(metadata.get(b"huggingface", b"{}"))
    features = info.get("info", {}).get("features", {})
    names = {}
    for column, feature in features.items():
        inner = feature.get("feature", feature) if isinstance(feature, dict) else {}
        if isinstance(inner, dict) and inner.get("_type") == "ClassLabel":
            names[column] = inner["names"]
    return names


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """JSON Lines, written under a temporary name and renamed into place (a killed fetch leaves no part file
    under the final name)."""
    with atomic_open(path) as handle:  # a failed or killed fetch leaves nothing in the user's folder
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
