"""Deployment: one ONNX graph with the shared encoder and every head (run by onnxruntime behind the pipeline),
and int8 dynamic quantization for the CPU, of the PyTorch model or of the graph. (Distillation into a smaller
student trains through the trainer: `hfmtl.train.distillation`.)"""
