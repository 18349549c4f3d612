"""Datasets by name: the embedded defaults and the loaders of files a user points at.

========== ======================================================== ============
name       what                                                     needs a path
========== ======================================================== ============
digits     scikit-learn's 8 x 8 handwritten digits (ships with it)  no
csbm       contextual stochastic block model, 2,000 nodes, 5 classes no
teacher    generated: 4 classes from hidden directions of a 32-d input no
mnist      MNIST IDX files (``train-images-idx3-ubyte`` ...)         yes
cora       Cora citation graph, Planetoid split (ships with it)      no
citeseer   CiteSeer citation graph, Planetoid split (ships with it)  no
pubmed     Planetoid files ``ind.pubmed.*``                          yes
========== ======================================================== ============

Cora and CiteSeer are embedded in ``dfa_bridge/data/embedded/planetoid`` with their
provenance and licence (its ``README.md``); a ``path`` given for them reads a user's own
Planetoid files instead. Every data set has a content fingerprint
(:func:`~dfa_bridge.data.fingerprint.data_fingerprint`) that results are keyed on.
"""

from __future__ import annotations

from photon.support.arguments import check_choice

from .tabular import Dataset, load_digits, load_mnist
from .generated import TEACHER_DEFAULTS, teacher_task
from .graphs import (EMBEDDED_PLANETOID, PLANETOID_DIRECTORY, PLANETOID_NAMES, GraphData,
                     contextual_sbm, load_planetoid)
from .fingerprint import data_fingerprint

__all__ = ["DATASET_NAMES", "GRAPH_DATASETS", "EMBEDDED_DATASETS", "load_dataset",
           "data_fingerprint"]

GRAPH_DATASETS = ("csbm",) + PLANETOID_NAMES
DATASET_NAMES = ("digits", "mnist", "teacher") + GRAPH_DATASETS
_NEED_PATH = ("mnist",) + tuple(n for n in PLANETOID_NAMES if n not in EMBEDDED_PLANETOID)
#: data sets that ship inside the package (no path needed)
EMBEDDED_DATASETS = ("digits",) + EMBEDDED_PLANETOID


def load_dataset(name: str, path=None, seed: int = 0) -> Dataset | GraphData:
    """Load the dataset ``name`` (see the module's table).

    Parameters
    ----------
    name
        Dataset name.
    path
        Directory of the files, for the datasets that need one; for ``cora`` and
        ``citeseer`` a directory of a user's own Planetoid files replaces the embedded ones.
    seed
        Seed of the generated data and of random splits (digits, csbm, teacher).

    Returns
    -------
    Dataset or GraphData
    """
    check_choice("data", name, DATASET_NAMES)
    if name in _NEED_PATH and path is None:
        raise ValueError(f"path = None: expected the directory of the {name} files for "
                         f"data = {name!r}")
    if name == "digits":
        return load_digits(seed=seed)
    if name == "csbm":
        return contextual_sbm(seed=seed)
    if name == "teacher":
        return teacher_task(**TEACHER_DEFAULTS, seed=seed)
    if name == "mnist":
        return load_mnist(path)
    return load_planetoid(PLANETOID_DIRECTORY if path is None else path, name)
