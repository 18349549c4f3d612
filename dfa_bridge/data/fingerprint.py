"""A data set's identity by content: the SHA-256 of its arrays, not its name.

Results of studies are keyed on what a setting is; for data, that is the numbers a run
trains and tests on. Two loads of the same files give the same fingerprint; a user's
edited copy of Cora, another split, or another generated seed give another.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import scipy.sparse as sp

from photon.support.arrays import to_numpy

__all__ = ["data_fingerprint"]


def _update(digest, value) -> None:
    """Feed ``value`` (array, sparse matrix, scalar, string or tuple) into ``digest``."""
    if sp.issparse(value):
        matrix = value.tocsr()
        matrix.sort_indices()
        digest.update(f"csr{matrix.shape}".encode())
        for part in (matrix.data, matrix.indices, matrix.indptr):
            _update(digest, part)
    elif isinstance(value, (tuple, list)) and not isinstance(value, np.ndarray):
        digest.update(f"seq{len(value)}".encode())
        for item in value:
            _update(digest, item)
    elif isinstance(value, (str, int, float, bool)) or value is None:
        digest.update(repr(value).encode())
    else:
        array = np.ascontiguousarray(to_numpy(value))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())


def data_fingerprint(data) -> str:
    """SHA-256 (hex) of a data set's content.

    Parameters
    ----------
    data
        A :class:`~dfa_bridge.data.tabular.Dataset`, a
        :class:`~dfa_bridge.data.graphs.GraphData`, a
        :class:`~dfa_bridge.data.text.CharCorpus`, or any dataclass of arrays, sparse
        matrices, strings and numbers (NumPy or CuPy).

    Returns
    -------
    str
        64 hex digits. Every field but the ``name`` label enters: features, labels,
        adjacency, split indices, class count, vocabulary.
    """
    if not dataclasses.is_dataclass(data) or isinstance(data, type):
        raise TypeError(f"data = {type(data).__name__}: expected a data set of "
                        "dfa_bridge.data (a dataclass of arrays)")
    digest = hashlib.sha256(type(data).__name__.encode())
    for field in dataclasses.fields(data):
        if field.name == "name":
            continue
        digest.update(field.name.encode())
        _update(digest, getattr(data, field.name))
    return digest.hexdigest()
