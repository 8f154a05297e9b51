"""Run by test_gradient_methods under `torchrun --nproc_per_node 2`: each process computes two tasks' gradients
on its half of a small regression problem, and `combine_rows` averages and combines them; rank 0
also computes, without any process group, the update of one process with the whole batch, and the update of
combining on each process first. Writes the three to ddp_gradients.json."""

import json
import os
import sys
from types import SimpleNamespace

import torch
from accelerate import Accelerator
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hfmtl.config.run_config import LossWeightingConfig  # noqa: E402
from hfmtl.train.loss_weighting import GradNormWeighting, ProjectedGradients  # noqa: E402
from hfmtl.train.step import combine_rows  # noqa: E402

TASKS = ["a", "b"]
ONE_PROCESS = SimpleNamespace(num_processes=1, scaler=None)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(3, 4)
        self.heads = nn.ModuleDict({task: nn.Linear(4, 1) for task in TASKS})
        self.heads["b"].load_state_dict(self.heads["a"].state_dict())  # same head, opposite targets: conflict


def weighting(strategy: str):
    static = dict.fromkeys(TASKS, 1.0)
    if strategy == "gradnorm":
        return GradNormWeighting(static, TASKS, alpha=1.5)
    return ProjectedGradients(static, LossWeightingConfig(strategy=strategy, cagrad_c=0.4), seed=0)


def update(strategy: str, x: torch.Tensor, y: torch.Tensor, accelerator) -> list[float]:
    """The gradients to apply (shared, then heads, then GradNorm's logits) after one step on (x, y)."""
    model, method = Tiny(), weighting(strategy)
    shared = list(model.encoder.parameters())
    task_grads, losses = [], []
    for index, task in enumerate(TASKS):
        for parameter in shared:
            parameter.grad = None
        loss = ((model.heads[task](torch.tanh(model.encoder(x))).squeeze(-1) - y[:, index]) ** 2).mean()
        loss.backward()
        task_grads.append(torch.cat([p.grad.reshape(-1) for p in shared]))
        losses.append(loss.detach())
    combined = combine_rows(model, shared, torch.stack(task_grads), torch.stack(losses), method, accelerator, 0)
    sizes = [p.numel() for p in shared]
    for parameter, part in zip(shared, combined.split(sizes), strict=True):
        parameter.grad = part.view_as(parameter)
    extra = [method.logits] if strategy == "gradnorm" else []
    return torch.cat([p.grad.reshape(-1) for p in [*model.parameters(), *extra]]).tolist()


accelerator = Accelerator(cpu=True)
rank = accelerator.process_index
generator = torch.Generator().manual_seed(1)
x = torch.randn(8, 3, generator=generator)
target = x @ torch.tensor([1.0, -2.0, 0.5])
y = torch.stack([target, -target + 0.3 * torch.randn(8, generator=generator)], dim=1)  # two conflicting tasks
half = slice(4 * rank, 4 * rank + 4)
results = {}
for strategy in ("pcgrad", "cagrad", "gradnorm"):
    two = update(strategy, x[half], y[half], accelerator)
    own = torch.tensor(update(strategy, x[half], y[half], ONE_PROCESS))
    torch.distributed.all_reduce(own)
    if rank == 0:
        # The whole batch's mean loss is the mean of the halves' means: its gradients are theirs averaged.
        whole = update(strategy, x, y, ONE_PROCESS)
        results[strategy] = {"two_processes": two, "one_process": whole, "combined_per_process": (own / 2).tolist()}
if rank == 0:
    with open(os.path.join(sys.argv[1], "ddp_gradients.json"), "w") as handle:
        json.dump(results, handle)
# Leave the process group before exiting: with gloo's threads still alive at interpreter exit, a rank was
# sometimes aborted ("terminate called without an active exception") after its work was done.
accelerator.end_training()
