"""Evaluation: running a model over each task's rows, the metrics, `hfmtl evaluate`, and its reports and plots."""
