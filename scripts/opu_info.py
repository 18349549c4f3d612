"""Describe a device and what a projection job costs on it.

A thin caller of :mod:`studies.commands.opu_info`, for a checkout that is not
installed; once it is, ``photon-dfa opu-info`` runs the same command.
``python scripts/opu_info.py --help`` lists its arguments.
"""

import importlib.util
import pathlib
import sys

if importlib.util.find_spec("studies") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from photon.support.cli import run_main  # noqa: E402
from studies.commands.opu_info import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_main(main))
