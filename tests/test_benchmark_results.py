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
    assert "layer-wise lr decay 0.9 · fp32" in text.settings_text({**settings, "layer_lr_decay": 0.9})
    assert "layer-wise" not in text.settings_text({**settings, "layer_lr_decay": 1.0})


def test_hfmtl_settings_record_the_shipped_task_mix():
    from hfmtl.config.run_config import load_config

    runs = load_script("benchmark_runs")
    config = load_config(REPO / "configs" / "quickstart.yaml", ["training.mixed_precision=no"])
    settings = runs.hfmtl_settings(config, steps=config.training.max_steps)
    assert settings["task_weights"] == config.sampling.weights
    assert config.sampling.final_weights is not None  # the quickstart's mix moves over the run
    assert settings["final_task_weights"] == config.sampling.final_weights
    assert settings["layer_lr_decay"] == config.training.layer_lr_decay


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


@pytest.fixture
def seed_study(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    return load_script("seed_study")


def peer_run(task: str, seed: int, value: float, steps: int | None = 2000) -> dict:
    return {"task": task, "settings": {"learning_rate": 5e-5, "steps": steps, "seed": seed}, "value": value}


def test_seed_study_compares_means_over_their_standard_error(seed_study):
    result = seed_study.compare([0.90, 0.92, 0.91], [0.88, 0.89])
    assert result["hfmtl"]["mean"] == pytest.approx(0.91) and result["peer"]["n"] == 2
    # sd 0.01 and 0.00707: error sqrt(0.0001 / 3 + 0.00005 / 2) = 0.00764; delta 0.025 > 2 errors
    assert result["standard_error"] == pytest.approx(0.007638, abs=1e-6)
    assert result["delta"] == pytest.approx(0.025) and result["verdict"] == "beyond noise"
    assert seed_study.compare([0.90, 0.88], [0.89, 0.885])["verdict"] == "within noise"
    assert seed_study.compare([0.90], [0.89])["verdict"] == "unknown (one seed)"


def test_seed_study_gathers_peers_from_both_parts_and_refuses_mixed_recipes(seed_study, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"time_to_quality": {"peers": [peer_run("s", 42, 0.89)]}}))
    second.write_text(json.dumps({"peer_spread": {"runs": [peer_run("s", 43, 0.88), peer_run("s", 44, 0.87)]}}))
    values, settings = seed_study.peer_values([first, second])
    assert values == {"s": {42: 0.89, 43: 0.88, 44: 0.87}} and settings["s"] == {"learning_rate": 5e-5, "steps": 2000}
    second.write_text(json.dumps({"peer_spread": {"runs": [peer_run("s", 43, 0.88, steps=1000)]}}))
    with pytest.raises(SystemExit, match="the s peer of seed 43 was trained with other settings"):
        seed_study.peer_values([first, second])
    second.write_text(json.dumps({"peer_spread": {"runs": [peer_run("s", 42, 0.80)]}}))
    with pytest.raises(SystemExit, match="a second s peer of seed 42"):
        seed_study.peer_values([first, second])


def test_seed_study_takes_each_runs_last_evaluation_and_refuses_another_recipe(seed_study, tmp_path):
    from hfmtl.config.run_config import load_config, save_config

    raw = {
        "encoder": {"name_or_path": "tests/assets/tiny/encoder"},
        "tasks": [{"name": "s", "kind": "classification", "data": {"train": "a.jsonl", "validation": "b.jsonl"}}],
        "training": {"max_steps": 20, "warmup_steps": 2, "eval_every": 10},
    }
    (tmp_path / "recipe.yaml").write_text(json.dumps(raw))  # YAML reads JSON
    config = load_config(tmp_path / "recipe.yaml")
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(tmp_path / "recipe.yaml", ["seed=45", "training.eval_every=5"]), run / "run_config.yaml")
    evaluations = [{"step": step, "eval": {"s": {"accuracy": value}}} for step, value in ((10, 0.7), (20, 0.8))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [{"step": 1}, *evaluations]))
    curves = tmp_path / "curves.json"
    curves.write_text(json.dumps({"evaluations": {"42": [{"step": 10, "s": 0.6}, {"step": 20, "s": 0.75}]}}))
    seeds = seed_study.hfmtl_values([curves, run], config)
    assert {seed: (point["step"], point["s"]) for seed, point in seeds.items()} == {42: (20, 0.75), 45: (20, 0.8)}
    with pytest.raises(SystemExit, match="seed 42 is given twice"):
        seed_study.hfmtl_values([curves, curves], config)
    save_config(load_config(tmp_path / "recipe.yaml", ["training.learning_rate=1e-3"]), run / "run_config.yaml")
    with pytest.raises(SystemExit, match=r"not trained with the config's recipe \(differs in \['training'\]\)"):
        seed_study.hfmtl_values([run], config)
    shorter = load_config(tmp_path / "recipe.yaml", ["training.max_steps=10"])
    with pytest.raises(SystemExit, match="seed 42 ends at step 20, not the config's last step"):
        seed_study.hfmtl_values([curves], shorter)


def test_train_rounds_pool_all_tokens_over_all_seconds_and_show_each_ratio():
    speed, table = load_script("benchmark_speed"), load_script("benchmark_speed_table")
    settings = {"batch_size": 32, "learning_rate": 1e-4, "precision": "bf16", "sampling": "group_by_length"}
    ours_settings = {**settings, "steps": 9, "task_sampling": "fixed"}
    hfmtl_rounds = [
        {"tokens": 1000, "examples": 50, "padded_tokens": 1250, "seconds": 10.0, "settings": ours_settings},
        {"tokens": 1000, "examples": 50, "padded_tokens": 1250, "seconds": 40.0, "settings": ours_settings},
    ]
    ours = speed.pooled_hfmtl(hfmtl_rounds)
    # 2000 tokens in 50 s: 40/s, not the mean of the rounds' rates (100/s and 25/s).
    assert (ours["tokens_per_second"], ours["padding_efficiency"], ours["runs"]) == (40.0, 0.8, 2)

    def peer(rate: float) -> dict:
        run = {"task": "s", "settings": {**settings, "steps": 9}, "steps": 9, "seconds": 10.0}
        return speed.peer_throughput([{**run, "tokens": rate * 10, "examples": rate, "padded_tokens": rate * 11}])

    figures = {
        "hfmtl": ours,
        "grouped_peer": peer(50.0),
        "default_peer": peer(20.0),
        "rounds": [
            {"hfmtl_tokens_per_second": 100.0, "grouped_peer_tokens_per_second": 50.0, "ratio_vs_grouped_peer": 2.0},
            {"hfmtl_tokens_per_second": 25.0, "grouped_peer_tokens_per_second": 50.0, "ratio_vs_grouped_peer": 0.5},
        ],
        "full_pass_padding": {"s": {"hfmtl": 0.95, "grouped_peer": 0.96}},
        "hfmtl_training_gflops": 1.0,
        "grouped_peer_training_gflops": 1.0,
        "default_peer_training_gflops": 1.0,
        "matmul_peak_gflops": 10.0,
        "encoder_layer_parameters": 1e6,
    }
    text = "\n".join(table.train_section(figures))
    assert "| Trainer, length-grouped |" in text and "| 0.80× |" in text  # 40 over 50, pooled
    assert "ratios 2.00× (100 vs 50), 0.50× (25 vs 50); min 0.50×, max 2.00×" in text
    assert "`group_by_length` sampler: s 0.9500 vs 0.9600." in text
    assert "rounds" not in "\n".join(table.train_section({**figures, "rounds": figures["rounds"][:1]}))
