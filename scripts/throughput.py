"""Throughput study: projections per second and joules per projection, OPU against CPU/GPU.

A thin caller of :mod:`studies.commands.throughput` that runs this checkout's code,
installed or not; installed, ``photon-dfa throughput`` runs the same command.
``python scripts/throughput.py --help`` lists its arguments.
"""

import pathlib
import sys

# this checkout's packages, installed or not (an older install elsewhere is not used)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.throughput import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
