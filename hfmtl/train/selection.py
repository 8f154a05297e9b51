"""Model selection during training: score every task's validation rows, log the scores, keep the best
model folder (by `training.metric_for_best_model`: the mean of the main metrics unless set), and tell the
loop what early stopping says: which tasks stop, and whether the run does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from tqdm.auto import tqdm

from hfmtl.config.run_config import RunConfig
from hfmtl.data.collate import Collator
from hfmtl.errors import ConfigError
from hfmtl.evaluation.metrics import aggregate, format_main_metrics
from hfmtl.evaluation.scoring import EvalSet, evaluate_tasks
from hfmtl.model.folder import MODEL_DIR, save_model_dir
from hfmtl.model.modeling import MultiTaskModel
from hfmtl.tasks import main_metric
from hfmtl.train.checkpoint import TrainerState
from hfmtl.train.records import MetricsLog, numeric_leaves


@dataclass(frozen=True)
class Verdict:
    """What one evaluation tells the loop."""

    stop_run: str | None
    """Why the run stops here (early stopping), or None to go on."""
    stop_tasks: list[str]
    """Tasks to stop drawing from now on (their own `early_stopping_patience` ran out)."""


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

    def __call__(self, progress: TrainerState) -> Verdict:
        """Evaluate at `progress.step` and update `progress`: the best model, and early stopping's counts."""
        training, accelerator = self.config.training, self.accelerator
        kinds = {task.name: task.kind for task in self.config.tasks}
        tuned = {task.name for task in self.config.tasks if task.threshold == "tuned"}
        results = evaluate_tasks(
            self.model, self.sets, self.collator, accelerator, training.eval_batch_size, tune_thresholds=tuned
        )
        metrics = {task: result.metrics for task, result in results.items()}
        mean = aggregate(metrics, kinds)
        score = selection_score(training.metric_for_best_model, metrics, kinds)
        record = {"step": progress.step, "eval": metrics, "aggregate": mean, "train_seconds": progress.train_seconds}
        stop_tasks = tasks_out_of_patience(progress, metrics, self.config)
        if progress.stopped_tasks:
            record["stopped_tasks"] = list(progress.stopped_tasks)
        self.log.write(record)
        accelerator.log(numeric_leaves({"eval": metrics, "eval/aggregate": score}), step=progress.step)
        if accelerator.is_local_main_process:
            tqdm.write(f"step {progress.step}: aggregate {mean:.4f} ({format_main_metrics(metrics, kinds)})")
        if progress.best_aggregate is None or score > progress.best_aggregate:
            progress.best_aggregate, progress.best_step, progress.best_metrics = score, progress.step, metrics
            progress.evaluations_without_improvement = 0
            if accelerator.is_main_process:
                best = {"step": progress.step, "aggregate": mean, "metrics": metrics}
                if training.metric_for_best_model != "mean":
                    best["selected_by"] = {"metric": training.metric_for_best_model, "value": score}
                save_model_dir(self.model, self.tokenizer, Path(self.config.output_dir) / MODEL_DIR, self.config, best)
        else:
            progress.evaluations_without_improvement += 1
        patience = training.early_stopping_patience
        reason = None
        if patience is not None and progress.evaluations_without_improvement >= patience:
            reason = f"no improvement of {training.metric_for_best_model} in {patience} evaluations"
        elif len(progress.stopped_tasks) == len(self.config.tasks):
            reason = "every task has stopped (each task's early_stopping_patience)"
        return Verdict(stop_run=reason, stop_tasks=stop_tasks)


def tasks_out_of_patience(progress: TrainerState, metrics: dict[str, dict[str, Any]], config: RunConfig) -> list[str]:
    """Count, for every task with an `early_stopping_patience` still drawn, the evaluations since its main
    metric last improved; the tasks whose count reaches their patience are added to `progress.stopped_tasks`
    and returned."""
    stopped = []
    for task in config.tasks:
        if task.early_stopping_patience is None or task.name in progress.stopped_tasks:
            continue
        value = float(metrics[task.name][main_metric(task.kind)])
        best = progress.task_best.get(task.name)
        if best is None or value > best:
            progress.task_best[task.name], progress.task_evaluations_without_improvement[task.name] = value, 0
            continue
        stale = progress.task_evaluations_without_improvement.get(task.name, 0) + 1
        progress.task_evaluations_without_improvement[task.name] = stale
        if stale >= task.early_stopping_patience:
            progress.stopped_tasks.append(task.name)
            stopped.append(task.name)
    return stopped


def selection_score(selection: str, metrics: dict[str, dict[str, Any]], kinds: dict[str, str]) -> float:
    """The number `training.metric_for_best_model` names in one evaluation's metrics (higher is better)."""
    if selection == "mean":
        return aggregate(metrics, kinds)
    task, _, name = selection.partition(".")
    name = name or main_metric(kinds[task])
    value = metrics[task].get(name)
    if not isinstance(value, (int, float)):
        numbers = [key for key, v in metrics[task].items() if isinstance(v, (int, float))]
        raise ConfigError(
            f"'training.metric_for_best_model' names '{name}' of task '{task}', which is not one of its metrics "
            f"({', '.join(numbers)})"
        )
    return float(value)
