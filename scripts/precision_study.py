"""What a TF32 or bf16 transmission matrix changes: speckle statistics and projection error.

A thin caller of :mod:`studies.commands.precision_study` that runs this checkout's code,
installed or not; installed, ``photon-dfa precision-study`` runs the same command.
``python scripts/precision_study.py --help`` lists its arguments.
"""

import pathlib
import sys

# this checkout's packages, installed or not (an older install elsewhere is not used)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.precision_study import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
