"""`python -m hfmtl ...` (also `accelerate launch -m hfmtl ...`)."""

import sys

from hfmtl.cli import main

sys.exit(main())
