"""DFA step cost: BP, DFA with feedback on the GPU (dense, structured) and DFA through an OPU.

A thin caller of :mod:`studies.commands.dfa_step_cost` that runs this checkout's code,
installed or not; installed, ``photon-dfa dfa-step-cost`` runs the same command.
``python scripts/dfa_step_cost.py --help`` lists its arguments.
"""

import pathlib
import sys

# this checkout's packages, installed or not (an older install elsewhere is not used)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.dfa_step_cost import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
