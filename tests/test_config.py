from pathlib import Path

import pytest
import yaml

from hfmtl.config.run_config import (
    RunConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
    task_batch_size,
)
from hfmtl.errors import ConfigError
from hfmtl.tasks import TASK_KINDS

REPO = Path(__file__).resolve().parent.parent
MINIMAL = {
    "encoder": {"name_or_path": "tests/assets/tiny/encoder"},
    "tasks": [{"name": "sentiment", "kind": "classification", "data": {"train": "a.jsonl"}}],
}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert {task.kind for task in config.tasks} <= set(TASK_KINDS) and config.tasks


def test_defaults_fill_what_is_not_written(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.data_dir == "../shared/data"
    assert config.training.max_steps == 1000
    assert config.tasks[0].text_column == "text" and config.tasks[0].labels is None


def test_unknown_key_is_named_with_its_dotted_path(tmp_path):
    raw = {**MINIMAL, "training": {"max_step": 10}}
    with pytest.raises(ConfigError, match=r"unknown key 'training\.max_step'; did you mean 'training\.max_steps'"):
        load_config(write(tmp_path, raw))


def test_unknown_key_inside_a_task_names_the_task(tmp_path):
    raw = {**MINIMAL, "tasks": [{**MINIMAL["tasks"][0], "lable_column": "x"}]}
    with pytest.raises(ConfigError, match=r"unknown key 'tasks\.sentiment\.lable_column'"):
        load_config(write(tmp_path, raw))


def test_unknown_task_kind(tmp_path):
    raw = {**MINIMAL, "tasks": [{**MINIMAL["tasks"][0], "kind": "summarization"}]}
    with pytest.raises(ConfigError, match=r"'tasks\.sentiment\.kind' is 'summarization'; expected one of"):
        load_config(write(tmp_path, raw))


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ({"training": {"max_steps": "many"}}, None, r"'training\.max_steps' must be an integer"),
        ({"training": {"mixed_precision": "fp8"}}, None, r"'training\.mixed_precision' must be one of auto, no, fp16"),
        ({"training": {"max_steps": 10, "warmup_steps": 20}}, None, r"'training\.warmup_steps' \(20\) must be"),
        ({"training": {"learning_rate": "fast"}}, None, r"'training\.learning_rate' must be a finite number"),
        ({"sampling": {"strategy": "fixed", "weights": {"other": 1}}}, None, r"missing: \['sentiment'\]"),
        ({"sampling": {"strategy": "fixed", "weights": {"sentiment": 0}}}, None, r"not all zero"),
        (
            {"sampling": {"strategy": "fixed", "weights": {"sentiment": 1}, "final_weights": {"other": 1}}},
            None,
            r"'sampling\.final_weights' must give one weight per task",
        ),
        ({"sampling": {"final_weights": {"sentiment": 1}}}, None, r"'sampling\.final_weights' only applies to"),
        ({"sampling": {"strategy": "roundrobin"}}, None, r"'sampling\.strategy' must be one of"),
        ({"encoder": {}}, None, r"missing required key 'encoder\.name_or_path'"),
        ({"tasks": [{**MINIMAL["tasks"][0], "batch_size": 0}]}, None, r"'tasks\.sentiment\.batch_size' must be >= 1"),
    ],
)
def test_bad_values_are_reported_by_key(tmp_path, section, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, {**MINIMAL, **section}))


def test_a_number_yaml_read_where_text_is_expected_is_refused_not_rewritten(tmp_path):
    # `labels: [1.0, 2.0]` would be the names "1.0", "2.0", which a data file's labels 1 and 2 never match
    # (and 1 would be read as the id of "2.0"); `revision: 1.10` would silently become "1.1".
    task = {**MINIMAL["tasks"][0], "labels": [1.0, 2.0]}
    with pytest.raises(ConfigError, match=r"'tasks\.sentiment\.labels\.0' must be a string, got the number 1\.0"):
        load_config(write(tmp_path, {**MINIMAL, "tasks": [task]}))
    (tmp_path / "text.yaml").write_text("encoder: {name_or_path: x, revision: 1.10}\ntasks: []\n")
    with pytest.raises(ConfigError, match=r"'encoder\.revision' must be a string, got the number 1\.1"):
        load_config(tmp_path / "text.yaml")
    for labels, names in (([1, 2], ("1", "2")), (["1.0", "2.0"], ("1.0", "2.0"))):
        config = load_config(write(tmp_path, {**MINIMAL, "tasks": [{**MINIMAL["tasks"][0], "labels": labels}]}))
        assert config.tasks[0].labels == names


def test_a_task_batch_size_overrides_the_runs(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), ["training.batch_size=16"])
    assert task_batch_size(config.tasks[0], config.training) == 16
    config = load_config(write(tmp_path, MINIMAL), ["training.batch_size=16", "tasks.sentiment.batch_size=64"])
    assert task_batch_size(config.tasks[0], config.training) == 64


def test_duplicate_task_names(tmp_path):
    raw = {**MINIMAL, "tasks": MINIMAL["tasks"] * 2}
    with pytest.raises(ConfigError, match="task name 'sentiment' is used twice"):
        load_config(write(tmp_path, raw))


def test_overrides_reach_nested_keys_and_tasks_by_name(tmp_path):
    config = load_config(
        write(tmp_path, MINIMAL),
        ["training.learning_rate=5e-5", "tasks.sentiment.loss_weight=2", "training.report_to=[tensorboard]"],
    )
    assert config.training.learning_rate == 5e-5  # YAML reads "5e-5" as text; floats accept numeric text
    assert config.tasks[0].loss_weight == 2.0
    assert config.training.report_to == ("tensorboard",)


def test_override_of_an_unknown_task_or_key(tmp_path):
    with pytest.raises(ConfigError, match="no task named 'ner'"):
        load_config(write(tmp_path, MINIMAL), ["tasks.ner.loss_weight=2"])
    with pytest.raises(ConfigError, match=r"unknown key 'training\.bogus'"):
        load_config(write(tmp_path, MINIMAL), ["training.bogus=1"])
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        load_config(write(tmp_path, MINIMAL), ["training.max_steps"])


def test_saved_config_loads_back_identical(tmp_path):
    config = load_config(REPO / "configs" / "mtl-minilm.yaml", ["seed=7"])
    save_config(config, tmp_path / "out" / "run_config.yaml")
    assert load_config(tmp_path / "out" / "run_config.yaml") == config
    assert config_from_dict(config_to_dict(config)) == config


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("encoder: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)


def test_yaml_booleans_become_the_word_a_choice_field_expects(tmp_path):
    raw = {**MINIMAL, "training": {"mixed_precision": False}}  # what YAML makes of `mixed_precision: no`
    assert load_config(write(tmp_path, raw)).training.mixed_precision == "no"
    assert load_config(write(tmp_path, MINIMAL), ["training.mixed_precision=no"]).training.mixed_precision == "no"


def test_set_values_that_yaml_would_cut_or_misread_stay_text(tmp_path):
    config = load_config(
        write(tmp_path, MINIMAL),
        ["output_dir=runs/a #1", "encoder.base_model=org/name: v2", "training.learning_rate=3e-4", "seed=7"],
    )
    assert config.output_dir == "runs/a #1" and config.encoder.base_model == "org/name: v2"
    assert config.training.learning_rate == 3e-4 and config.seed == 7


def test_a_key_given_twice_names_both_lines(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "training:\n  max_steps: 3\ntraining:\n  max_steps: 4\n")
    lines = path.read_text().splitlines()
    first, second = (i + 1 for i, line in enumerate(lines) if line == "training:")
    with pytest.raises(
        ConfigError, match=rf"key 'training' appears twice in one mapping, on lines {first} and {second}"
    ):
        load_config(path)


def test_yaml_merge_keys_work_and_the_keys_beside_them_win(tmp_path):
    text = (Path(__file__).parent.parent / "configs" / "tiny.yaml").read_text()
    text = text.replace(
        "    data: {train: sst_train.jsonl, validation: sst_validation.jsonl}\n    labels:",
        "    data: &sst {train: sst_train.jsonl, validation: sst_validation.jsonl}\n    labels:",
    ).replace(
        "    data: {train: sst_train.jsonl, validation: sst_validation.jsonl}\n    label_column: intensity",
        "    data: {<<: *sst, validation: null}\n    label_column: intensity",
    )
    assert "<<: *sst" in text
    (tmp_path / "run.yaml").write_text(text)
    tasks = {task.name: task for task in load_config(tmp_path / "run.yaml").tasks}
    assert tasks["intensity"].data.train == "sst_train.jsonl" and tasks["intensity"].data.validation is None
    assert tasks["sentiment"].data.validation == "sst_validation.jsonl"


def test_a_config_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(yaml.safe_dump(MINIMAL).encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"run\.yaml is not UTF-8 text \(byte \d+ cannot be decoded\)"):
        load_config(path)


def test_loading_a_config_imports_neither_torch_nor_transformers():
    import subprocess
    import sys

    code = (
        "import sys; from hfmtl.config.run_config import load_config; load_config('configs/quickstart.yaml'); "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"  # a config mistake is reported without a 3-second torch import


def test_hfmtl_config_prints_every_field_with_its_meaning_as_yaml_that_loads_back(capsys):
    from hfmtl.cli import main
    from hfmtl.config.help import CONFIG_CLASSES, field_help

    for cls in CONFIG_CLASSES:  # every field has its meaning written, so `hfmtl config` shows it
        assert all(info.meaning for info in field_help(cls).values()), cls.__name__
    main(["config", "configs/quickstart.yaml", "--set", "training.mixed_precision=no"])
    text = capsys.readouterr().out
    assert (
        "  mixed_precision: 'no'  # Literal['auto', 'no', 'fp16', 'bf16'], default auto: Autocast precision." in text
    )
    assert "  strategy: fixed  # Literal['proportional', 'temperature'," in text
    assert config_from_dict(yaml.safe_load(text)) == load_config(
        REPO / "configs" / "quickstart.yaml", ["training.mixed_precision=no"]
    )


def test_train_help_points_to_hfmtl_config(capsys):
    from hfmtl.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "hfmtl config CONFIG" in capsys.readouterr().out
