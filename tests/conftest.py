"""Shared test set-up: markers and the GPU skip."""

import pytest

from photon.support.arrays import cupy_available


def pytest_collection_modifyitems(config, items):
    if cupy_available():
        return
    skip = pytest.mark.skip(reason="CuPy with a CUDA device is not available")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
