"""Task kinds: the data side of each kind of objective (reading rows, tokenizing, decoding logits).

The model side (head and loss) lives in `hfmtl/modeling.py`, which must stay importable on its own.
Adding a kind: one module here with the functions of `TaskKind`, one line in `TASK_KINDS`, a head in
`heads.HEAD_TYPES`, an example config, and the kind added to the parametrized tests.
"""

from __future__ import annotations

from types import ModuleType

from hfmtl.tasks import classification, regression, token_classification

TASK_KINDS: dict[str, ModuleType] = {
    "classification": classification,
    "token_classification": token_classification,
    "regression": regression,
}
