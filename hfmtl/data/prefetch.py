"""Preparing the next batch in a background thread while the current step computes, resumably.

The loader runs one batch ahead; a checkpoint must not record that batch as consumed, so the state handed
out is the loader's state from just before the batch that is waiting (taken while the thread is idle).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from hfmtl.data.sampling import MultiTaskLoader


class PrefetchingLoader:
    """`next_batch()` and `state_dict()` of a MultiTaskLoader, with the next batch made in the background.

    Call `load_state_dict` on the loader before wrapping it; `close()` stops the thread.
    """

    def __init__(self, loader: MultiTaskLoader, *, pin_memory: bool = False) -> None:
        self.loader = loader
        self.pin_memory = pin_memory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfmtl-prefetch")
        self._pending = self._prefetch()

    def next_batch(self) -> tuple[str, dict[str, Any]]:
        """The next (unit, batch), exactly as the wrapped loader would give it."""
        _, future = self._pending
        unit, batch = future.result()  # re-raises any error from the thread, here in the loop
        self._pending = self._prefetch()
        return unit, batch

    def state_dict(self) -> dict[str, Any]:
        """The loader's state before the waiting batch: resuming from it yields that batch next."""
        return self._pending[0]

    def stop_units(self, names: list[str]) -> None:
        """Stop drawing these units from the next batch on. The batch made ahead is dropped and the loader
        rewound to before it, so that the batches that follow are the ones a run resumed from here gets."""
        state, future = self._pending
        future.result()  # the thread must be idle before the loader is touched
        self.loader.load_state_dict(state)
        self.loader.stopped.update(names)
        self._pending = self._prefetch()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _prefetch(self) -> tuple[Mapping[str, Any], Future]:
        state = self.loader.state_dict()  # the thread is idle here: nothing else touches the loader
        return state, self._executor.submit(self._make)

    def _make(self) -> tuple[str, dict[str, Any]]:
        unit, batch = self.loader.next_batch()
        if self.pin_memory:  # page-locked host memory lets the copy to the GPU overlap the step
            batch = _pinned(batch)
        return unit, batch


def _pinned(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _pinned(value) if isinstance(value, dict) else value.pin_memory() if torch.is_tensor(value) else value
        for key, value in batch.items()
    }
