"""A run's output folder: locked while a run writes it, and never emptied of anything a run did not write.

A fresh run takes an empty or missing folder. A folder holding an earlier hfmtl run (its `run_config.yaml`)
with something worth keeping (a model, a report, a complete checkpoint) is refused unless `--overwrite`,
which removes only what a run writes; an earlier run that ended before saving anything (killed early) is
simply replaced. A folder with anything else in it, or a file of the user's inside one of the run's own
folders (a note in `model/`), is refused, overwrite or not. The lock file names the
process and host and is held with `flock`, which the kernel releases when the process ends: the lock of a
killed run is taken over (with a warning), so `--resume` after a kill just works.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from hfmtl.errors import ConfigError
from hfmtl.evaluation.report import REPORT_FILES
from hfmtl.model.folder import MODEL_FILES
from hfmtl.train.checkpoint import CHECKPOINTS

logger = logging.getLogger(__name__)

LOCK_FILE = ".hfmtl.lock"
RUN_MARKER = "run_config.yaml"
RUN_OUTPUTS = (
    RUN_MARKER,
    "environment.json",
    "tasks.json",
    "metrics.jsonl",
    ".metrics.jsonl.tmp",
    ".*.partial",  # an atomic write a kill cut short (hfmtl.atomic)
    "checkpoints",
    "model",
    "model.new",  # a model folder being swapped in when a kill came (hfmtl.model.folder.save_model_dir)
    "model.old",
    "logs",
    "report-*",
)
"""What `hfmtl train` (and `hfmtl evaluate`, beside the model folder) writes in an output folder."""
WRITTEN_INSIDE = {
    "model": (*MODEL_FILES, "*.py", ".*.partial"),
    "report-*": REPORT_FILES,
    "logs": ("events.out.tfevents.*", "*/events.out.tfevents.*", "wandb/*"),
    "checkpoints": ("checkpoint-*/*.safetensors", "checkpoint-*/*.bin", "checkpoint-*/*.pt", "checkpoint-*/*.pkl",
                    "checkpoint-*/*.json", "checkpoint-*/.*.partial"),
}  # fmt: skip
"""What those of the outputs that are folders hold (paths relative to the folder, `fnmatch` patterns, where
`*` also crosses `/`): `--overwrite` removes such a folder whole only when it holds nothing else."""


@contextlib.contextmanager
def locked_output_dir(output_dir: Path, *, is_main_process: bool = True) -> Iterator[None]:
    """Hold the folder's lock while the body runs (only the main process locks; the others share its run)."""
    if not is_main_process:
        yield
        return
    lock = output_dir / LOCK_FILE
    is_new = not output_dir.exists()
    handle = _acquire(lock)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # still held: a run that opened it meanwhile sees it gone, and retries
        handle.close()
        if is_new and output_dir.is_dir() and not any(output_dir.iterdir()):  # a run refused before it wrote
            output_dir.rmdir()


def earlier_run_files(output_dir: Path, *, overwrite: bool, resume_from: Path | None = None) -> list[Path]:
    """What a run in `output_dir` must remove first: an earlier run's files. Raises ConfigError for a folder
    holding anything a run did not write, or an earlier run worth keeping without `overwrite`. A run resumed
    from one of the folder's own checkpoints continues it (nothing to remove); one resumed from another
    folder's checkpoint starts this one afresh, and gets the same check as a fresh run."""
    if resume_from is not None and resume_from.resolve().parent == (output_dir / CHECKPOINTS).resolve():
        return []
    if not output_dir.exists():
        return []
    if not output_dir.is_dir():
        raise ConfigError(f"output_dir '{output_dir}' is a file, not a folder")
    entries = sorted(path for path in output_dir.iterdir() if path.name != LOCK_FILE)
    if not entries:
        return []
    foreign = [path.name for path in entries if not _is_run_output(path.name)]
    if foreign or not (output_dir / RUN_MARKER).is_file():
        names = ", ".join(sorted(foreign or [path.name for path in entries])[:5])
        raise ConfigError(
            f"output_dir '{output_dir}' is not empty and does not hold an earlier hfmtl run ({names}); hfmtl never "
            "removes files it did not write: choose another folder with --set output_dir=..."
        )
    kept = [path.name for path in entries if _is_worth_keeping(path)]
    if kept and not overwrite:
        raise ConfigError(
            f"output_dir '{output_dir}' holds an earlier run ({', '.join(kept)}); pass --resume to continue it, "
            "--overwrite to replace it, or --set output_dir=... for a new folder"
        )
    inside = [name for path in entries for name in _foreign_inside(path)]
    if inside:
        raise ConfigError(
            f"output_dir '{output_dir}' holds an earlier hfmtl run, and files it did not write among that run's "
            f"outputs ({', '.join(inside[:5])}); hfmtl never removes files it did not write: move them out, or "
            "choose another folder with --set output_dir=..."
        )
    return entries


def remove_run_files(paths: list[Path]) -> None:
    """Remove what `earlier_run_files` listed (a link is removed, never followed)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _is_worth_keeping(path: Path) -> bool:
    """A model, a report or a complete checkpoint; not logs or half-written checkpoints of a run killed early."""
    if path.name == "checkpoints":
        return any(not child.name.endswith(".incomplete") for child in path.iterdir())
    return path.name == "model" or path.name.startswith("report-")


def _foreign_inside(path: Path) -> list[str]:
    """The files under one of a run's output folders that no run writes there (as `folder/relative path`); a
    `report-*` entry that is not a folder is itself foreign. A link is removed, never followed: it holds nothing."""
    kind = next(
        (
            key
            for key in WRITTEN_INSIDE
            if fnmatch.fnmatchcase(path.name.removesuffix(".new").removesuffix(".old"), key)
        ),
        None,
    )
    if kind is None or path.is_symlink():
        return []
    if not path.is_dir():
        return [path.name] if kind == "report-*" else []
    foreign = []
    for folder, _, files in os.walk(path):  # links to folders are listed as files, and not walked
        for name in files:
            relative = (Path(folder) / name).relative_to(path).as_posix()
            if not any(fnmatch.fnmatchcase(relative, pattern) for pattern in WRITTEN_INSIDE[kind]):
                foreign.append(f"{path.name}/{relative}")
    return sorted(foreign)


def _is_run_output(name: str) -> bool:
    return any(Path(name).match(pattern) for pattern in RUN_OUTPUTS)


def _acquire(lock: Path) -> TextIO:
    """Lock the folder: an exclusive `flock` on the lock file, held open for the run. The kernel releases it
    when the process ends, however it ends, so a killed run's lock is free at once (a pid in the file could
    name another process by then: pids repeat, in a new container from 1); the file's pid, host and start
    time only say who holds it."""
    if lock.parent.exists() and not lock.parent.is_dir():
        raise ConfigError(f"output_dir '{lock.parent}' is a file, not a folder")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create output_dir '{lock.parent}': {error.strerror}") from None
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):  # the holder may remove the file between our open and our lock: then open the new one
        try:
            handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the run, closed on release)
        except PermissionError:
            raise ConfigError(f"output_dir '{lock.parent}' is not writable") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_holder(lock)
            handle.close()
            who = f"pid {other['pid']} on {other['host']}, since {other.get('since', '?')}" if other else "starting"
            raise ConfigError(
                f"output_dir '{lock.parent}' is in use by another run ({who}); wait for it, or choose another "
                "--set output_dir=..."
            ) from None
        if not lock.exists() or os.stat(lock).st_ino != os.fstat(handle.fileno()).st_ino:
            handle.close()
            continue
        earlier = _read_holder(lock)
        if earlier is not None:  # a run that ended without releasing it: killed
            logger.warning("taking over the lock of a run that is no longer running: %s (%s)", lock, earlier)
        handle.seek(0)
        handle.truncate()
        json.dump(holder, handle)
        handle.flush()
        return handle
    raise ConfigError(f"could not lock output_dir '{lock.parent}': another run keeps taking it")


def _read_holder(lock: Path) -> dict | None:
    """The lock's holder; None when the file is unreadable (a run killed while writing it)."""
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None
