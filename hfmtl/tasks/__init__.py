"""Task kinds: one `TaskKind` object per kind of objective, owning everything that differs between kinds.

Adding a kind (what `multi_label_classification` needed):
1. A module here with a class that follows `kind.TaskKind` (derive from `kind.TextKind` for one answer per
   text): row checking and the stored label, tokenization, raw predictions from logits, metrics and the main
   metric, the pipeline's answer, the model-card task type and the report's figure.
2. Its instance in `TASK_KINDS` below.
3. Its head (and loss) in `heads.HEAD_TYPES`, keyed by the kind's name.
4. A sample config under `configs/`, and the kind in `tests/kinds.py`, which the parametrized tests run over.
5. Any config key only this kind reads (like `threshold`) on `TaskConfig`, checked in the kind's `check_config`.
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
