"""Datasets by name: the embedded defaults and the loaders of files a user points at.

========== ======================================================== ============
name       what                                                     needs a path
========== ======================================================== ============
digits     scikit-learn's 8 x 8 handwritten digits (ships with it)  no
csbm       contextual stochastic block model, 2,000 nodes, 5 classes no
teacher    generated: 4 classes from hidden directions of a 32-d input no
mnist      MNIST IDX files (``train-images-idx3-ubyte`` ...)         yes
cora       Planetoid files ``ind.cora.*``                            yes
citeseer   Planetoid files ``ind.citeseer.*``                        yes
pubmed     Planetoid files ``ind.pubmed.*``                          yes
========== ======================================================== ============
"""

from __future__ import annotations

from .tabular import Dataset, load_digits, load_mnist
from .generated import TEACHER_DEFAULTS, teacher_task
from .graphs import PLANETOID_NAMES, GraphData, contextual_sbm, load_planetoid

__all__ = ["DATASET_NAMES", "GRAPH_DATASETS", "load_dataset"]

GRAPH_DATASETS = ("csbm",) + PLANETOID_NAMES
DATASET_NAMES = ("digits", "mnist", "teacher") + GRAPH_DATASETS
_NEED_PATH = ("mnist",) + PLANETOID_NAMES


def load_dataset(name: str, path=None, seed: int = 0) -> Dataset | GraphData:
    """Load the dataset ``name`` (see the module's table).

    Parameters
    ----------
    name
        Dataset name.
    path
        Directory of the files, for the datasets that need one.
    seed
        Seed of the generated data and of random splits (digits, csbm, teacher).

    Returns
    -------
    Dataset or GraphData
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"data = {name!r}: expected one of {', '.join(DATASET_NAMES)}")
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
    return load_planetoid(path, name)
