"""The co-design report: calibrate, train through the OPU, sweep noise, compare throughput.

A thin caller of :mod:`studies.commands.report` that runs this checkout's code,
installed or not; installed, ``photon-dfa report`` runs the same command.
``python scripts/report.py --help`` lists its arguments.
"""

import pathlib
import sys

# this checkout's packages, installed or not (an older install elsewhere is not used)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.report import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
