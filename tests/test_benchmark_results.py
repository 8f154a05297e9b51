"""scripts/benchmark.py: a partial re-run adds its parts to the earlier file and keeps the others."""

import json

import pytest
from conftest import REPO, load_script


@pytest.fixture(scope="module")
def benchmark():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO / "scripts"))  # benchmark.py imports its sibling modules by name
        return load_script("benchmark")


def meta(benchmark, command: str, smoke_run: bool = False) -> dict:
    return {"format": benchmark.FORMAT, "smoke_run": smoke_run, "command": command, "commands": [command]}


def test_a_partial_rerun_keeps_the_earlier_parts_and_lists_both_commands(benchmark, tmp_path):
    earlier = {"meta": meta(benchmark, "first"), "inference": {"ratio_vs_plain_forwards": 2.9}, "train": {"old": 1}}
    (tmp_path / "cpu.json").write_text(json.dumps(earlier))
    results = benchmark.start_results(tmp_path / "cpu", meta(benchmark, "second"), is_partial=True)
    assert results["inference"] == {"ratio_vs_plain_forwards": 2.9}
    assert results["train"] == {"old": 1}  # until this run's train part replaces it
    assert results["meta"]["commands"] == ["first", "second"]


def test_a_partial_rerun_without_the_earlier_file_says_so(benchmark, tmp_path, capsys):
    results = benchmark.start_results(tmp_path / "cpu", meta(benchmark, "second"), is_partial=True)
    assert results == {"meta": meta(benchmark, "second")}
    assert "cpu.json does not exist yet; it will hold only this run's parts" in capsys.readouterr().err


def test_smoke_figures_are_not_mixed_with_real_ones(benchmark, tmp_path):
    (tmp_path / "cpu.json").write_text(json.dumps({"meta": meta(benchmark, "first", smoke_run=True)}))
    with pytest.raises(SystemExit, match="holds smoke-run figures"):
        benchmark.start_results(tmp_path / "cpu", meta(benchmark, "second"), is_partial=True)


def test_a_full_run_starts_afresh(benchmark, tmp_path):
    (tmp_path / "cpu.json").write_text(json.dumps({"meta": meta(benchmark, "first"), "train": {"old": 1}}))
    assert benchmark.start_results(tmp_path / "cpu", meta(benchmark, "all"), is_partial=False) == {
        "meta": meta(benchmark, "all")
    }


def test_hfmtl_settings_line_names_the_task_mix():
    text = load_script("benchmark_text")
    settings = {
        "batch_size": 32,
        "learning_rate": 1e-4,
        "precision": "no",
        "sampling": "group_by_length",
        "steps": 2400,
    }
    annealed = {
        **settings,
        "task_weights": {"sentiment": 0.2, "ner": 0.8},
        "final_task_weights": {"sentiment": 0.6, "ner": 0.4},
    }
    assert text.settings_text(annealed, who="hfmtl").endswith(
        "task weights sentiment 0.2 / ner 0.8 moving to sentiment 0.6 / ner 0.4"
    )
    assert "task weights" not in text.settings_text({**settings, "task_weights": None, "final_task_weights": None})


def test_hfmtl_settings_record_the_shipped_task_mix():
    from hfmtl.config.run_config import load_config

    runs = load_script("benchmark_runs")
    config = load_config(REPO / "configs" / "quickstart.yaml", ["training.mixed_precision=no"])
    settings = runs.hfmtl_settings(config, steps=config.training.max_steps)
    assert settings["task_weights"] == config.sampling.weights
    assert config.sampling.final_weights is not None  # the quickstart's mix moves over the run
    assert settings["final_task_weights"] == config.sampling.final_weights


def test_time_to_quality_finds_the_first_evaluation_past_every_peer_and_keeps_the_curve(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    from benchmark_quality import first_crossing

    def evaluation(step, seconds, sentiment, ner):
        return {"step": step, "train_seconds": seconds, "eval": {"a": {"accuracy": sentiment}, "b": {"f1": ner}}}

    log = [{"step": 1, "loss": 2.0}, evaluation(100, 10.0, 0.80, 0.91), evaluation(200, 20.0, 0.90, 0.89)]
    log.append(evaluation(300, 30.0, 0.90, 0.90))
    targets = {"a": ("accuracy", 0.90), "b": ("f1", 0.90)}
    crossing = first_crossing(log, targets)
    assert (crossing["reached"], crossing["step"], crossing["train_seconds"]) == (True, 300, 30.0)  # 200: b short
    assert [point["step"] for point in crossing["evaluations"]] == [100, 200, 300]
    assert crossing["evaluations"][0] == {"step": 100, "train_seconds": 10.0, "a": 0.80, "b": 0.91}
    missed = first_crossing(log, {"a": ("accuracy", 0.95), "b": ("f1", 0.90)})
    assert not missed["reached"] and missed["best"] == {"a": 0.90, "b": 0.91} and len(missed["evaluations"]) == 3
