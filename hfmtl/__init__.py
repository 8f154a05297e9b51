"""hfmtl: fine-tune one Hugging Face encoder on several NLP tasks at once.

The sub-packages, in the order a run uses them:
- `config`: the run config (YAML → checked dataclasses); imports no torch.
- `tasks`: one `TaskKind` object per kind of task (rows, labels, predictions, metrics, answers).
- `data`: reading, checking, tokenizing and caching each task's files; batching; task sampling.
- `model`: the shared encoder and its heads (`model.modeling.MultiTaskModel`); the saved model folder.
- `train`: the training loop on Accelerate, loss weighting, checkpoints, model selection.
- `evaluation`: scoring a model per task, `hfmtl evaluate` and its reports.
- `serve`: `serve.pipeline.MultiTaskPipeline` and `hfmtl predict`.
- `hub`: publishing to and downloading from the Hugging Face Hub.
- `deploy`: ONNX export with every head, the onnxruntime backend, int8 quantization.

Import the parts you need; importing the package itself is cheap.
"""

__version__ = "0.1.0"
