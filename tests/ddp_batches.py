"""Run by test_sampling under `torchrun --nproc_per_node 2`: each process draws its length-grouped batches
of one task and writes their padded lengths and real tokens, so the test can compare the processes step by
step."""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch.distributed as dist  # noqa: E402

from hfmtl.config.run_config import SamplingConfig  # noqa: E402
from hfmtl.data.arrays import RowArrays  # noqa: E402
from hfmtl.data.collate import Collator  # noqa: E402
from hfmtl.data.sampling import MultiTaskLoader  # noqa: E402

dist.init_process_group("gloo")  # the processes only meet here: each loader alone must give aligned batches
rank, world = dist.get_rank(), dist.get_world_size()
# lengths 1..100; 501 batches of 8, so the last of a pass has no partner on the other process
rows = [{"input_ids": [1] * (1 + (i * 37) % 100), "labels": 0} for i in range(4001)]
loader = MultiTaskLoader(
    {"a": RowArrays.from_rows(rows)},
    Collator(pad_token_id=0),
    SamplingConfig(strategy="uniform"),
    batch_size=8,
    total_draws=600,
    seed=3,
    num_processes=world,
    process_index=rank,
)
steps = []
for _ in range(600):  # more than two passes over the task
    _, batch = loader.next_batch()
    steps.append({"padded": int(batch["input_ids"].shape[1]), "real": int(batch["attention_mask"].sum())})
with open(os.path.join(sys.argv[1], f"batches{rank}.json"), "w") as handle:
    json.dump(steps, handle)
dist.barrier()
dist.destroy_process_group()
