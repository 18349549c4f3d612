"""Feedback fidelity and noise budget of a DFA co-processor, without training.

A thin caller of :mod:`studies.commands.noise_budget` that runs this checkout's code,
installed or not; installed, ``photon-dfa noise-budget`` runs the same command.
``python scripts/noise_budget.py --help`` lists its arguments.
"""

import pathlib
import sys

# this checkout's packages, installed or not (an older install elsewhere is not used)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.noise_budget import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
