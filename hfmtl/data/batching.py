"""Choosing which rows go together in a batch: random, or grouped by length to cut padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hfmtl.data.collate import padded_length

MEGABATCH_FACTOR = 50  # rows sorted together = 50 batches: batches stay random, lengths within one stay close


def random_batches(num_rows: int, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """A shuffled pass over the rows, cut into batches (the last one may be short)."""
    order = rng.permutation(num_rows)
    return [order[i : i + batch_size].tolist() for i in range(0, num_rows, batch_size)]


def length_grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    num_processes: int = 1,
    max_tokens: int | None = None,
) -> list[list[int]]:
    """A shuffled pass where each batch holds rows of similar length, and the batches come in random order.

    Rows are shuffled, taken in chunks of MEGABATCH_FACTOR batches (per process), sorted by length within a
    chunk and cut into batches (as the transformers Trainer's `group_by_length` does); then the batch order
    is shuffled so that long and short batches alternate at random. Under DDP the processes of one step take
    `num_processes` consecutive batches, so the batches are shuffled in groups of that many neighbours in
    length order: every process of a step gets rows of about the same length, and none waits on a longer
    batch. With one process this is the plain shuffle.

    With `max_tokens`, a batch takes more than `batch_size` rows while rows x its longest row stays within
    `max_tokens` (never fewer than `batch_size`, and never so many that a pass has fewer batches than processes).
    """
    order = rng.permutation(len(lengths))
    # Whole groups per chunk, so none straddles two chunks (with a token budget the batches per chunk vary, and
    # a group may: its processes then get the shortest rows of one chunk and the longest of the next).
    chunk = batch_size * MEGABATCH_FACTOR * num_processes
    most_rows = max(batch_size, len(lengths) // num_processes)
    batches = []
    for start in range(0, len(order), chunk):
        members = sorted(order[start : start + chunk].tolist(), key=lambda i: -lengths[i])
        if max_tokens is None:
            batches.extend(members[i : i + batch_size] for i in range(0, len(members), batch_size))
            continue
        i = 0
        while i < len(members):  # longest first: a batch's first row is its longest
            rows = min(most_rows, max(batch_size, max_tokens // max(1, lengths[members[i]])))
            batches.append(members[i : i + rows])
            i += rows
    groups = [batches[i : i + num_processes] for i in range(0, len(batches), num_processes)]
    # An incomplete last group stays last: shuffled into the middle, it would shift every later group off the
    # steps' boundaries. (The sampler ends a pass before a step that lacks a batch for some process.)
    complete = groups if len(groups[-1]) == num_processes else groups[:-1]
    shuffled = [complete[g] for g in rng.permutation(len(complete))] + groups[len(complete) :]
    return [batch for group in shuffled for batch in group]


def padding_efficiency(lengths: Sequence[int], batches: Sequence[Sequence[int]], multiple: int | None = None) -> float:
    """Real tokens / padded tokens over the batches (1.0 = no padding at all)."""
    real = sum(lengths[i] for batch in batches for i in batch)
    padded = sum(padded_length([lengths[i] for i in batch], multiple) * len(batch) for batch in batches)
    return real / padded


def cross_process_padding_efficiency(
    lengths: Sequence[int], batches: Sequence[Sequence[int]], num_processes: int, multiple: int | None = None
) -> float:
    """Real tokens / the tokens computed at the pace of the slowest process: under DDP every process of a
    step waits for the one with the most padded tokens, so each counts as that many. Step k's processes take
    batches k*P ... k*P + P-1, as the sampler hands them out; a last incomplete step is left out."""
    real = computed = 0
    for start in range(0, len(batches) - num_processes + 1, num_processes):
        step = batches[start : start + num_processes]
        real += sum(lengths[i] for batch in step for i in batch)
        computed += num_processes * max(padded_length([lengths[i] for i in b], multiple) * len(b) for b in step)
    return real / computed
