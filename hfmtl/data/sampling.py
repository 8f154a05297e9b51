"""Which task each step trains on, and the batches of each task: `task_weights` and `MultiTaskLoader`.

Every process draws the same task at each step (same seed, same generator) and takes its own batch of that
task: the batches of a pass over a task are cut identically on every process, which then take them in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfmtl.config.run_config import SamplingConfig
from hfmtl.data.arrays import RowArrays
from hfmtl.data.batching import length_grouped_batches, random_batches
from hfmtl.data.collate import Collator
from hfmtl.errors import ConfigError

STRATEGIES = ("proportional", "temperature", "uniform", "fixed", "annealed")


def task_weights(
    sizes: Mapping[str, int],
    strategy: str,
    *,
    temperature: float = 2.0,
    size_cap: int | None = None,
    weights: Mapping[str, float] | None = None,
    final_weights: Mapping[str, float] | None = None,
    progress: float = 0.0,
) -> dict[str, float]:
    """The probability of drawing each task, summing to 1.

    proportional: n_i / sum(n). temperature: n_i^(1/T), with n_i capped at `size_cap`. uniform: 1/k.
    fixed: the given weights, normalised (with `final_weights`, each normalised weight moves linearly from
    `weights` at `progress`=0 to `final_weights` at 1). annealed: proportional at `progress`=0 moving linearly to
    uniform at `progress`=1 (the fraction of training done).
    """
    for name, size in sizes.items():
        if size <= 0:
            raise ConfigError(f"task '{name}' has no training rows; every task needs at least one")
    if strategy == "proportional":
        raw = dict(sizes)
    elif strategy == "temperature":
        if temperature <= 0:
            raise ConfigError(f"sampling temperature must be > 0, got {temperature}")
        raw = {name: min(size, size_cap or size) ** (1.0 / temperature) for name, size in sizes.items()}
    elif strategy == "uniform":
        raw = {name: 1.0 for name in sizes}
    elif strategy == "fixed":
        raw = _fixed(sizes, weights)
        if final_weights is not None:
            start, end = _normalised(raw), _normalised(_fixed(sizes, final_weights))
            raw = {name: (1 - progress) * start[name] + progress * end[name] for name in sizes}
    elif strategy == "annealed":
        total, k = sum(sizes.values()), len(sizes)
        raw = {name: (1 - progress) * size / total + progress / k for name, size in sizes.items()}
    else:
        raise ConfigError(f"unknown sampling strategy '{strategy}'; expected one of: {', '.join(STRATEGIES)}")
    return _normalised(raw)


def _normalised(raw: Mapping[str, float]) -> dict[str, float]:
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def _fixed(sizes: Mapping[str, int], weights: Mapping[str, float] | None) -> dict[str, float]:
    weights = weights or {}
    if set(weights) != set(sizes):
        raise ConfigError(f"fixed sampling needs one weight per task {sorted(sizes)}, got {sorted(weights)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"sampling weights must be >= 0 and not all zero, got {dict(weights)}")
    return {name: float(weights[name]) for name in sizes}


@dataclass
class _TaskCursor:
    """Where a process is in its pass over one task's batches."""

    epoch: int = 0
    position: int = 0


class MultiTaskLoader:
    """Yields `(task, batch)` forever: a task drawn by the sampling weights (or, under `mode: all_tasks`, every
    task in turn), then that task's next batch.

    The task draws come from one seeded generator; each pass over a task is shuffled by a generator seeded
    with (seed, task, epoch), so the loader's whole state is the draw generator's state plus an (epoch,
    position) per task. A pass ends when too few batches are left for every process to get one; the next
    pass reshuffles.
    """

    def __init__(
        self,
        rows: Mapping[str, RowArrays],
        collator: Collator,
        sampling: SamplingConfig,
        *,
        batch_size: int | Mapping[str, int],
        total_draws: int,
        seed: int,
        group_by_length: bool = True,
        max_tokens: int | None = None,
        num_processes: int = 1,
        process_index: int = 0,
    ) -> None:
        self.rows = rows
        self.collator = collator
        self.sampling = sampling
        self.task_names = list(rows)
        # one size for every task, or one per task (a task's own `batch_size`)
        self.batch_sizes = dict(batch_size) if isinstance(batch_size, Mapping) else dict.fromkeys(rows, batch_size)
        self.total_draws = total_draws
        self.seed = seed
        self.group_by_length = group_by_length
        self.max_tokens = max_tokens
        self.num_processes = num_processes
        self.process_index = process_index
        self.sizes = {name: len(task_rows) for name, task_rows in rows.items()}
        self.lengths = {name: task_rows.lengths.tolist() for name, task_rows in rows.items()}
        for name, size in self.sizes.items():
            if size < self.batch_sizes[name] * num_processes:
                raise ConfigError(
                    f"task '{name}' has {size} training rows, fewer than one batch per process "
                    f"({self.batch_sizes[name]} x {num_processes}); lower its batch_size or training.batch_size"
                )
        self.static_weights = self.weights(0)  # also checks the strategy and weights before training starts
        self.draws = 0
        self.stopped: set[str] = set()
        """Units no longer drawn (per-task early stopping); the others' weights are renormalised."""
        self.task_rng = np.random.default_rng(seed)
        self.cursors = {name: _TaskCursor() for name in self.task_names}
        self._passes: dict[str, tuple[int, list[list[int]]]] = {}

    def weights(self, draw: int) -> dict[str, float]:
        """The task weights in force at a draw (they change for the annealed strategy and `final_weights`)."""
        s = self.sampling
        progress = min(1.0, draw / max(1, self.total_draws - 1))
        return task_weights(
            self.sizes,
            s.strategy,
            temperature=s.temperature,
            size_cap=s.size_cap,
            weights=s.weights,
            final_weights=s.final_weights,
            progress=progress,
        )

    def next_task(self) -> str:
        """Draw the next task; the same on every process. Under `mode: all_tasks` the tasks come in turn."""
        if self.sampling.mode == "all_tasks":
            self.draws += 1
            return self.task_names[(self.draws - 1) % len(self.task_names)]
        changing = self.sampling.strategy == "annealed" or self.sampling.final_weights is not None
        weights = self.weights(self.draws) if changing else self.static_weights
        self.draws += 1
        names = [name for name in self.task_names if name not in self.stopped] or self.task_names
        cumulative = np.cumsum([weights[name] for name in names])
        if cumulative[-1] <= 0:  # the units left all weigh 0 (a fixed weight of 0): draw among them evenly
            cumulative = np.arange(1.0, len(names) + 1)
        index = int(np.searchsorted(cumulative, self.task_rng.random() * cumulative[-1], side="right"))
        return names[min(index, len(names) - 1)]

    def next_batch(self) -> tuple[str, dict[str, Any]]:
        """The next task and this process's collated batch of it."""
        task = self.next_task()
        cursor = self.cursors[task]
        batches = self._pass(task, cursor.epoch)
        if cursor.position + self.num_processes > len(batches):
            cursor.epoch, cursor.position = cursor.epoch + 1, 0
            batches = self._pass(task, cursor.epoch)
        indices = batches[cursor.position + self.process_index]
        cursor.position += self.num_processes
        collator = self.collator
        return task, self.rows[task].batch(indices, collator.pad_token_id, collator.pad_to_multiple_of)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence of tasks and batches (JSON-serialisable)."""
        return {
            "draws": self.draws,
            "task_rng": self.task_rng.bit_generator.state,
            "cursors": {name: [c.epoch, c.position] for name, c in self.cursors.items()},
            "stopped": sorted(self.stopped),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if sorted(state["cursors"]) != sorted(self.task_names):
            raise ConfigError(f"loader state is for tasks {sorted(state['cursors'])}, not {sorted(self.task_names)}")
        self.draws = state["draws"]
        self.task_rng.bit_generator.state = state["task_rng"]
        self.cursors = {name: _TaskCursor(*state["cursors"][name]) for name in self.task_names}
        self.stopped = set(state.get("stopped", ()))

    def _pass(self, task: str, epoch: int) -> list[list[int]]:
        """The batches of one pass over a task, identical on every process (cached for the current pass)."""
        cached = self._passes.get(task)
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, self.task_names.index(task), epoch])
            if self.group_by_length:
                batches = length_grouped_batches(
                    self.lengths[task], self.batch_sizes[task], rng, self.num_processes, self.max_tokens
                )
            else:
                batches = random_batches(self.sizes[task], self.batch_sizes[task], rng)
            self._passes[task] = cached = (epoch, batches)
        return cached[1]
