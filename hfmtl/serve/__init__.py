"""Serving: `MultiTaskPipeline` (every task's answer from one encoder pass), raw text to words, `hfmtl predict`."""
