"""The model card (README.md) of a model folder: Hub metadata with one eval result per task, the tasks and
label sets, validation results, a usage snippet, intended use and limits, and the training config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hfmtl.tasks import task_kind


def render_model_card(
    config: dict[str, Any],
    run_config: dict[str, Any] | None,
    best: dict[str, Any] | None,
    name: str,
    *,
    with_code: bool = False,
) -> str:
    """The README.md model card of a model (its config.json, run config and best validation metrics, as
    plain data): metadata with one eval result per task, and the text people read."""
    tasks = config["tasks"]
    sources = {task["name"]: task for task in (run_config or {}).get("tasks", [])}
    datasets = {task["name"]: _dataset_name(sources.get(task["name"])) for task in tasks}
    results = [
        EvalResult(
            task_type=task_kind(task["kind"]).pipeline_tag,
            task_name=task["name"],
            dataset_type=datasets[task["name"]],
            dataset_name=datasets[task["name"]],
            # The Hub groups results by task type and dataset; two tasks reading one dataset (sentiment and
            # intensity on SST) stay apart by what they read from it: the subset or the label column.
            dataset_config=_dataset_config(sources.get(task["name"])),
            dataset_split="validation",
            metric_type=task_kind(task["kind"]).main_metric,
            metric_value=best["metrics"][task["name"]][task_kind(task["kind"]).main_metric],
        )
        for task in tasks
        if best and task["name"] in best["metrics"]
    ]
    encoder = (run_config or {}).get("encoder", {})
    base_model = encoder.get("base_model") or _hub_id_or_none(config.get("encoder_name_or_path"))
    data = ModelCardData(
        model_name=name,
        base_model=base_model,
        library_name="hfmtl",
        tags=["hfmtl", "multi-task", *sorted({task_kind(task["kind"]).pipeline_tag for task in tasks})],
        eval_results=results or None,
    )
    body = _card_body(name, config, tasks, datasets, best, run_config, base_model, with_code)
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))


def _card_body(
    name: str,
    config: dict[str, Any],
    tasks: list[dict[str, Any]],
    datasets: dict[str, str],
    best: dict[str, Any] | None,
    run_config: dict[str, Any] | None,
    base_model: str | None,
    with_code: bool,
) -> str:
    encoder = base_model or config.get("encoder_name_or_path") or config["encoder"].get("model_type")
    lines = [
        f"# {name}",
        "",
        f"One `{encoder}` encoder shared by {len(tasks)} task heads, trained together with hfmtl: "
        "one forward pass of the encoder answers every task.",
        "",
        "## Tasks",
        "",
        "| task | kind | labels | data |",
        "|---|---|---|---|",
    ]
    for task in tasks:
        labels = ", ".join(task["labels"]) if task["labels"] else "a real value"
        kind = task["kind"] + (" (sentence pairs)" if task.get("pairs") else "")
        lines.append(f"| {task['name']} | {kind} | {labels} | {datasets[task['name']]} |")
    if best:
        lines += [
            "",
            f"## Results (validation, step {best['step']})",
            "",
            "| task | metric | value |",
            "|---|---|---:|",
        ]
        for task, metrics in best["metrics"].items():
            lines += [
                f"| {task} | {metric} | {value:.4f} |" for metric, value in metrics.items() if isinstance(value, float)
            ]
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from hfmtl.serve.pipeline import MultiTaskPipeline",
        "",
        f'pipeline = MultiTaskPipeline.from_pretrained("{name}")',
        'pipeline("Peter Blackburn loved the new film he saw in Brussels.")',
        "# one dict per text, keyed by task: " + ", ".join(_answer_shape(task) for task in tasks),
    ]
    pair_tasks = [task["name"] for task in tasks if task.get("pairs")]
    if pair_tasks:
        lines += [
            'pipeline(("A man is playing a flute.", "A man plays music."))',
            f"# a (text, text_pair) input: {', '.join(pair_tasks)} read both texts, the other tasks the first;"
            " a plain text gets every task but these",
        ]
    lines += [
        "```",
    ]
    if with_code:
        lines += [
            "",
            "Without hfmtl installed, transformers loads the model with the code published beside it:",
            "",
            "```python",
            "from transformers import AutoModel",
            f'model = AutoModel.from_pretrained("{name}", trust_remote_code=True)',
            "logits = model.forward_all(input_ids, attention_mask)  # {task: logits}",
            "```",
        ]
    lines += [
        "",
        "## Intended use and limits",
        "",
        "- Each head is only as good as its training data: the texts, domains and label definitions listed under "
        "Tasks. Expect lower quality on other domains, other languages and text far longer than the training "
        f"length ({(run_config or {}).get('encoder', {}).get('max_length', 'unknown')} tokens; longer texts are "
        "read in overlapping windows).",
        "- Not for decisions about people without human review; named entities and sentiment carry the biases of "
        "their sources.",
        "- Respect the terms of the training data (e.g. CoNLL-2003 is Reuters text, for research use only).",
    ]
    if run_config:
        lines += ["", "## Training config", "", "```yaml", yaml.safe_dump(run_config, sort_keys=False).strip(), "```"]
    return "\n".join(lines) + "\n"


def _answer_shape(task: dict[str, Any]) -> str:
    return f"{task['name']}: {task_kind(task['kind']).answer_shape}"


def _dataset_name(task: dict[str, Any] | None) -> str:
    if not task:
        return "unknown"
    data = task["data"]
    if data.get("hub_id"):
        return data["hub_id"]
    train = Path(data["train"])
    return train.parent.name or train.stem


def _dataset_config(task: dict[str, Any] | None) -> str | None:
    if not task:
        return None
    return task["data"].get("hub_subset") or task.get("label_column")


def _hub_id_or_none(name: str | None) -> str | None:
    if not name or name.startswith(("package:", ".", "/", "~")) or Path(name).exists():
        return None
    return name
