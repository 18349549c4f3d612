"""DFA step cost: BP, DFA with feedback on the GPU (dense, structured) and DFA through an OPU.

A thin caller of :mod:`studies.commands.dfa_step_cost`, for a checkout that is not
installed; once it is, ``photon-dfa dfa-step-cost`` runs the same command.
``python scripts/dfa_step_cost.py --help`` lists its arguments.
"""

import importlib.util
import pathlib
import sys

if importlib.util.find_spec("studies") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.dfa_step_cost import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
