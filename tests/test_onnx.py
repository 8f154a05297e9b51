"""ONNX export: one graph with every head; onnxruntime's outputs and the pipeline's answers equal PyTorch's."""

import json
import os
import platform
import shutil
import subprocess
import sys

import pytest
import torch
from test_pipeline import TEXTS
from test_trainer import REPO
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from torch.ao.quantization import per_channel_dynamic_qconfig

from hfmtl.cli import main
from hfmtl.config.run_config import load_config
from hfmtl.deploy import quantize
from hfmtl.errors import ConfigError, InputError, ModelLoadError
from hfmtl.serve.pipeline import MultiTaskPipeline
from hfmtl.train.trainer import train

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from hfmtl.deploy.onnx_export import export_onnx  # noqa: E402
from hfmtl.deploy.onnx_runtime import OnnxMultiTaskModel  # noqa: E402

PAIRS = [("The film was awful .", "The plot was very good ."), ("Anna met Olga .", "Anna met Olga in Paris .")]
LONG = "Anna met officials of Reuters in Paris . " * 30


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    return export_onnx(trained / "model", tmp_path_factory.mktemp("onnx") / "export").parent


def test_every_head_is_an_output_equal_to_pytorch(trained, exported):
    torch_pipeline = MultiTaskPipeline.from_pretrained(trained / "model")
    model, tokenizer = torch_pipeline.model, torch_pipeline.tokenizer
    onnx_model = OnnxMultiTaskModel(exported)
    validation = [json.loads(line)["text"] for line in (REPO / "tests/assets/tiny/data/sst_validation.jsonl").open()]
    for batch in (validation[:16], TEXTS, [LONG[:200]]):
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=64, return_tensors="pt")
        with torch.no_grad():
            expected = model.forward_all(**encoded)
        got = onnx_model.logits(model.task_names, **encoded)
        for task in model.task_names:
            assert got[task].shape == expected[task].shape, task
            assert torch.allclose(got[task], expected[task], atol=1e-4), task


def test_the_onnxruntime_pipeline_answers_as_the_pytorch_one(trained, exported):
    torch_pipeline = MultiTaskPipeline.from_pretrained(trained / "model", batch_size=2)
    onnx_pipeline = MultiTaskPipeline.from_pretrained(exported, backend="onnxruntime", batch_size=2)
    inputs = [*TEXTS, LONG, *PAIRS]
    for expected, got in zip(torch_pipeline(inputs), onnx_pipeline(inputs), strict=True):
        assert _labels(got) == _labels(expected)
        assert _scores(got) == pytest.approx(_scores(expected), abs=1e-4)


def _labels(answer):
    """Everything but the scores: labels, entity spans and types, which labels a multi-label task gave."""
    return {
        task: [{k: v for k, v in e.items() if k != "score"} for e in value]
        if isinstance(value, list)
        else ({k: v for k, v in value.items() if k != "score"} if isinstance(value, dict) else None)
        for task, value in answer.items()
    }


def _scores(answer):
    scores = []
    for value in answer.values():
        if isinstance(value, float):
            scores.append(value)
        elif isinstance(value, dict):
            scores.append(value["score"])
        else:
            scores += [e["score"] for e in value]
    return scores


@pytest.mark.parametrize("sharing", [["sharing.soft_layers=1"], ["tasks.ner.layer=1"]], ids=["soft", "hierarchical"])
def test_soft_and_hierarchical_models_export_too(tmp_path, sharing):
    overrides = [f"output_dir={tmp_path / 'run'}", "training.max_steps=4", "training.warmup_steps=0", *sharing]
    result = train(load_config(REPO / "configs/tiny.yaml", overrides))
    folder = export_onnx(result.model_dir, tmp_path / "export").parent
    torch_pipeline = MultiTaskPipeline.from_pretrained(result.model_dir)
    encoded = torch_pipeline.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = torch_pipeline.model.forward_all(**encoded)
    got = OnnxMultiTaskModel(folder).logits(list(expected), **encoded)
    assert all(torch.allclose(got[task], expected[task], atol=1e-4) for task in expected)


def test_export_and_predict_from_the_command_line(trained, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["export", str(trained / "model"), "--format", "onnx", "--out", str(out)]) == 0
    assert {"model.onnx", "hfmtl_tasks.json", "config.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    capsys.readouterr()
    assert main(["predict", str(out), TEXTS[0], "--backend", "onnxruntime"]) == 0
    answer = json.loads(capsys.readouterr().out.strip())
    expected = MultiTaskPipeline.from_pretrained(trained / "model")(TEXTS[0])
    assert answer["sentiment"]["label"] == expected["sentiment"]["label"]
    assert main(["export", str(trained / "model"), "--out", str(out)]) == 2  # an earlier export: not replaced
    assert "pass --overwrite" in capsys.readouterr().err
    (tmp_path / "onnx.new").mkdir()  # a folder of the user's beside the export: not the export's to remove
    (tmp_path / "onnx.new" / "work.txt").write_text("mine")
    assert main(["export", str(trained / "model"), "--out", str(out), "--overwrite"]) == 0
    assert (tmp_path / "onnx.new" / "work.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx", "onnx.new"]  # no temporary folder left
    (out / "notes.txt").write_text("mine")  # the user's file inside an earlier export stops --overwrite
    assert main(["export", str(trained / "model"), "--out", str(out), "--overwrite"]) == 2
    assert "files it did not write (notes.txt)" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.onnx").is_file()


def test_bad_exports_are_clear_errors(trained, tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        export_onnx(tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown export format 'tflite'; expected one of: onnx"):
        export_onnx(trained / "model", tmp_path / "out", format="tflite")
    with pytest.raises(ConfigError, match="is the model folder itself"):
        export_onnx(trained / "model", trained / "model")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty and is not an earlier export"):
        export_onnx(trained / "model", tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"  # nothing of the user's is touched
    with pytest.raises(ModelLoadError, match="is not an ONNX export"):
        MultiTaskPipeline.from_pretrained(trained / "model", backend="onnxruntime")
    with pytest.raises(InputError, match="unknown backend 'tensorrt'"):
        MultiTaskPipeline.from_pretrained(trained / "model", backend="tensorrt")


def test_the_onnxruntime_backend_runs_on_the_cpu_only(exported):
    with pytest.raises(InputError, match="runs on the CPU in the exported dtype"):
        MultiTaskPipeline.from_pretrained(exported, backend="onnxruntime", dtype=torch.bfloat16)


def test_without_the_extra_the_error_names_it(trained, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"need onnxruntime: pip install 'hfmtl\[onnx\]'"):
        export_onnx(trained / "model", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def _relative_error(got: torch.Tensor, expected: torch.Tensor, mask: torch.Tensor) -> float:
    """The largest error over real tokens (padding positions answer nothing), relative to the largest logit."""
    if got.dim() == 3:  # per token: only positions the pipeline reads
        got, expected = got[mask.bool()], expected[mask.bool()]
    return float((got - expected).abs().max() / expected.abs().max().clamp(min=1e-6))


# Dynamic int8 keeps each weight to 1/127 of its tensor's largest and each activation to 1/255 of its batch's
# range; through the tiny encoder's two layers and a head that stays within a few percent of the largest logit.
# 10% is the bound: tight enough to catch a wrong scale (which is off by far more), loose enough for rounding.
INT8_BOUND = 0.10


def test_int8_onnx_stays_close_and_is_smaller(trained, exported, tmp_path):
    quantized = export_onnx(trained / "model", tmp_path / "int8", quantize="int8").parent
    # (On the tiny model the graph and the unquantized embeddings weigh as much as the Linear weights.)
    assert (quantized / "model.onnx").stat().st_size < 0.9 * (exported / "model.onnx").stat().st_size
    assert json.loads((quantized / "hfmtl_tasks.json").read_text())["quantized"] == "int8"
    fp32, int8 = OnnxMultiTaskModel(exported), OnnxMultiTaskModel(quantized)
    tokenizer = MultiTaskPipeline.from_pretrained(trained / "model").tokenizer
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    tasks = [spec.name for spec in fp32.config.task_specs]
    expected, got = fp32.logits(tasks, **encoded), int8.logits(tasks, **encoded)
    for task in tasks:
        assert _relative_error(got[task], expected[task], encoded["attention_mask"]) < INT8_BOUND, task


def test_int8_torch_pipeline_stays_close(trained):
    fp32 = MultiTaskPipeline.from_pretrained(trained / "model")
    int8 = MultiTaskPipeline.from_pretrained(trained / "model", quantize="int8")
    assert any(isinstance(module, DynamicLinear) for module in int8.model.modules())
    encoded = fp32.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected, got = fp32.model.forward_all(**encoded), int8.model.forward_all(**encoded)
    for task in expected:
        assert _relative_error(got[task], expected[task], encoded["attention_mask"]) < INT8_BOUND, task


@pytest.mark.parametrize("exact", [True, False])
def test_int8_torch_activations_use_8_bits_only_where_the_cpu_multiplies_them_exactly(trained, monkeypatch, exact):
    monkeypatch.setattr(quantize, "full_range_is_exact", lambda: exact)
    int8 = MultiTaskPipeline.from_pretrained(trained / "model", quantize="int8")
    linears = [type(module) for module in int8.model.modules() if isinstance(module, DynamicLinear)]
    assert linears and set(linears) == {quantize.FullRangeDynamicLinear if exact else DynamicLinear}


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="fbgemm's x86 kernels")
def test_the_full_range_probe_sees_kernels_that_saturate():
    # fbgemm's AVX2 kernels sum u8 x s8 pairs in 16 bits (they saturate); FBGEMM_ENABLE_INSTRUCTIONS picks them
    # on any x86 CPU, so the probe must answer False there, whatever this machine's own kernels are.
    probe = "from hfmtl.deploy.quantize import full_range_is_exact; print(full_range_is_exact())"
    env = {**os.environ, "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
    answer = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "False"


@pytest.mark.skipif(not quantize.full_range_is_exact(), reason="this CPU's int8 kernels saturate 8-bit activations")
def test_8_bit_activations_are_closer_to_fp32_than_7_bit():
    torch.manual_seed(0)
    linear, x = torch.nn.Linear(256, 64), torch.randn(32, 256)
    linear.qconfig = per_channel_dynamic_qconfig
    with torch.no_grad():
        expected = linear(x)
        errors = {
            cls: (cls.from_float(linear)(x) - expected).abs().mean()
            for cls in (quantize.FullRangeDynamicLinear, DynamicLinear)
        }
    assert errors[quantize.FullRangeDynamicLinear] < 0.7 * errors[DynamicLinear]


def test_bad_quantize_options_are_clear_errors(trained, exported, tmp_path):
    with pytest.raises(ConfigError, match="unknown quantization 'int4'; expected one of: int8"):
        export_onnx(trained / "model", tmp_path / "out", quantize="int4")
    with pytest.raises(InputError, match="quantized when it is exported"):
        MultiTaskPipeline.from_pretrained(exported, backend="onnxruntime", quantize="int8")
    with pytest.raises(InputError, match="runs on the CPU in float32"):
        MultiTaskPipeline.from_pretrained(trained / "model", quantize="int8", dtype=torch.bfloat16)


def test_a_damaged_export_folder_is_named_not_an_onnxruntime_traceback(exported, tmp_path):
    def damaged(name: str, change):
        folder = tmp_path / name
        shutil.copytree(exported, folder)
        change(folder)
        return folder

    cut = damaged("cut", lambda f: (f / "model.onnx").write_bytes((f / "model.onnx").read_bytes()[:5000]))
    with pytest.raises(ModelLoadError, match=r"model\.onnx cannot be loaded by onnxruntime .*export again"):
        OnnxMultiTaskModel(cut)
    broken = damaged("tasks", lambda f: (f / "hfmtl_tasks.json").write_text("{"))
    with pytest.raises(ModelLoadError, match=r"hfmtl_tasks\.json is damaged \(JSONDecodeError\)"):
        OnnxMultiTaskModel(broken)
    with pytest.raises(ModelLoadError, match=r"is an ONNX export: run it with --backend onnxruntime"):
        MultiTaskPipeline.from_pretrained(exported)  # the torch backend, the default
    no_config = damaged("config", lambda f: (f / "config.json").unlink())
    with pytest.raises(ModelLoadError, match=r"has no config\.json \(its task specs\)"):
        OnnxMultiTaskModel(no_config)
