"""Thin wrapper: `python scripts/train.py CONFIG [--set k=v ...] [--resume [PATH]]` is `hfmtl train ...`.

Also the script to hand to launchers: `torchrun --nproc_per_node 2 scripts/train.py configs/x.yaml`.
"""

import sys

from hfmtl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
