"""Run by tests under `torchrun --nproc_per_node 2 tests/ddp_train.py OUT [KEY=VALUE ...]`: trains the tiny config
(with any overrides given) and writes, per process,
a fingerprint of the final weights and the task sequence, so the test can compare the processes."""

import hashlib
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from hfmtl.config.run_config import load_config  # noqa: E402
from hfmtl.train.trainer import train  # noqa: E402

output_dir = sys.argv[1]
# Two micro-batches per step exercise DDP's no_sync path, with unused heads, across processes.
overrides = ["training.max_steps=30", "training.eval_every=15", "training.gradient_accumulation_steps=2"]
overrides += sys.argv[2:]  # a test's own settings, e.g. sampling.mode=all_tasks
config = load_config("configs/tiny.yaml", [f"output_dir={output_dir}", *overrides])
result = train(config)
digest = hashlib.sha256()
for name, tensor in sorted(result.model.state_dict().items()):
    digest.update(name.encode())
    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
rank = os.environ["RANK"]
with open(os.path.join(output_dir, f"rank{rank}.json"), "w") as handle:
    json.dump({"weights": digest.hexdigest(), "tasks": result.tasks, "world": os.environ["WORLD_SIZE"]}, handle)
