"""Model selection during training: score every task's validation rows, log the scores, keep the best
model folder (by the mean of the main metrics), and tell the loop when early stopping says to stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from tqdm.auto import tqdm

from hfmtl.checkpoint import TrainerState
from hfmtl.config import RunConfig
from hfmtl.data.collate import Collator
from hfmtl.evaluation import EvalSet, evaluate_tasks
from hfmtl.metrics import aggregate, format_main_metrics
from hfmtl.model_dir import MODEL_DIR, save_model_dir
from hfmtl.modeling import MultiTaskModel
from hfmtl.records import MetricsLog, numeric_leaves


@dataclass
class ModelSelection:
    """Scores every task, logs the scores, keeps the best model folder, and says when to stop early."""

    accelerator: Accelerator
    model: MultiTaskModel
    tokenizer: Any
    sets: dict[str, EvalSet]
    collator: Collator
    config: RunConfig
    log: MetricsLog

    def __call__(self, progress: TrainerState) -> bool:
        """Evaluate at `progress.step`; True when early stopping says to stop."""
        training, accelerator = self.config.training, self.accelerator
        kinds = {task.name: task.kind for task in self.config.tasks}
        tuned = {task.name for task in self.config.tasks if task.threshold == "tuned"}
        results = evaluate_tasks(
            self.model, self.sets, self.collator, accelerator, training.eval_batch_size, tune_thresholds=tuned
        )
        metrics = {task: result.metrics for task, result in results.items()}
        score = aggregate(metrics, kinds)
        record = {"step": progress.step, "eval": metrics, "aggregate": score, "train_seconds": progress.train_seconds}
        self.log.write(record)
        accelerator.log(numeric_leaves({"eval": metrics, "eval/aggregate": score}), step=progress.step)
        if accelerator.is_local_main_process:
            tqdm.write(f"step {progress.step}: aggregate {score:.4f} ({format_main_metrics(metrics, kinds)})")
        if progress.best_aggregate is None or score > progress.best_aggregate:
            progress.best_aggregate, progress.best_step, progress.best_metrics = score, progress.step, metrics
            progress.evaluations_without_improvement = 0
            if accelerator.is_main_process:
                best = {"step": progress.step, "aggregate": score, "metrics": metrics}
                save_model_dir(self.model, self.tokenizer, Path(self.config.output_dir) / MODEL_DIR, self.config, best)
        else:
            progress.evaluations_without_improvement += 1
        patience = training.early_stopping_patience
        return patience is not None and progress.evaluations_without_improvement >= patience
