"""Task kinds: one `TaskKind` object per kind of objective, owning everything that differs between kinds.

Adding a kind (what `multi_label_classification` needed):
1. A module here with a class that follows `kind.TaskKind` (derive from `kind.TextKind` for one answer per
   text, which also gives it sentence pairs): how a row's label is read and stored, raw predictions from
   logits, scoring and the main metric, the pipeline's answer, the model-card task type, the report's figure.
2. Its instance in `TASK_KINDS` below.
3. Its head (and loss) in `heads.HEAD_TYPES`, keyed by the kind's name.
4. A task of the kind in `configs/tiny.yaml`, with tiny data from `scripts/make_tiny_assets.py`: every
   integration test (train, resume, evaluate, report, predict, publish, pipeline) then runs it. Unit tests
   of its rows, loss, metrics and answers beside `tests/test_multi_label.py`, and its bad inputs in
   docs/errors.md (`tests/test_errors.py`). A sample config on the real data under `configs/`.
5. Any config key only this kind reads (like `threshold`) on `TaskConfig`, checked in the kind's
   `check_config`, and any setting the saved model needs (like `thresholds`) on `modeling.TaskSpec`.
"""

from __future__ import annotations

from hfmtl.errors import ConfigError
from hfmtl.tasks.classification import CLASSIFICATION
from hfmtl.tasks.kind import TaskKind
from hfmtl.tasks.multi_label import MULTI_LABEL_CLASSIFICATION
from hfmtl.tasks.regression import REGRESSION
from hfmtl.tasks.token_classification import TOKEN_CLASSIFICATION

TASK_KINDS: dict[str, TaskKind] = {
    kind.name: kind for kind in (CLASSIFICATION, TOKEN_CLASSIFICATION, REGRESSION, MULTI_LABEL_CLASSIFICATION)
}


def task_kind(name: str) -> TaskKind:
    """The kind called `name` (a task config's `kind:`), or a ConfigError listing the kinds there are."""
    try:
        return TASK_KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown task kind '{name}'; expected one of: {', '.join(TASK_KINDS)}") from None


def main_metric(kind: str) -> str:
    """The name of the metric that stands for a task of this kind."""
    return task_kind(kind).main_metric
