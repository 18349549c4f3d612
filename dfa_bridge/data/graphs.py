"""Graph node-classification data: a contextual stochastic block model and Planetoid files.

Every loader returns a :class:`GraphData`: node features ``(n, d)``, labels, the
normalized adjacency ``A_hat = D^-1/2 (A + I) D^-1/2`` as a ``scipy.sparse`` CSR matrix,
and train / validation / test node indices (full-batch, semi-supervised training: the
loss sees the training nodes' labels only, the forward sees the whole graph).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import pickle

import numpy as np
from photon.support.arguments import check_choice, check_int
import scipy.sparse as sp

from photon.support.arrays import asarray_like

from .tabular import Dataset, check_features, check_labels

__all__ = ["GraphData", "normalized_adjacency", "planetoid_split", "contextual_sbm",
           "load_planetoid", "PLANETOID_NAMES", "EMBEDDED_PLANETOID", "PLANETOID_DIRECTORY"]

PLANETOID_NAMES = ("cora", "citeseer", "pubmed")
#: the Planetoid sets that ship inside the package, in :data:`PLANETOID_DIRECTORY`
EMBEDDED_PLANETOID = ("cora", "citeseer")
#: the embedded Planetoid files, with their provenance and licence (``README.md``)
PLANETOID_DIRECTORY = pathlib.Path(__file__).resolve().parent / "embedded" / "planetoid"


@dataclasses.dataclass
class GraphData:
    """A graph with node features, labels and a node split.

    Attributes
    ----------
    name
        A label.
    features : (n_nodes, n_features) array
        float32.
    labels : (n_nodes,) int array
        In ``[0, n_classes)``.
    adjacency : (n_nodes, n_nodes) scipy.sparse CSR matrix
        ``A_hat`` (float32).
    train_index, val_index, test_index : int arrays
        Disjoint node indices.
    n_classes
        Number of classes.
    """

    name: str
    features: object
    labels: object
    adjacency: object
    train_index: object
    val_index: object
    test_index: object
    n_classes: int

    def __post_init__(self):
        n = self.features.shape[0]
        if self.labels.shape != (n,) or self.adjacency.shape != (n, n):
            raise ValueError(f"labels, adjacency: shapes {self.labels.shape}, {self.adjacency.shape}: "
                             f"expected ({n},) and ({n}, {n}) for {n} nodes")
        if isinstance(self.n_classes, bool) or int(self.n_classes) != self.n_classes \
                or self.n_classes < 2:
            raise ValueError(f"n_classes = {self.n_classes!r}: expected an integer >= 2")
        check_labels(self.labels, self.n_classes, f"{self.name} labels")
        check_features(self.features, f"{self.name} features")
        for part in ("train", "val", "test"):
            index = getattr(self, f"{part}_index")
            if index.size and (int(index.min()) < 0 or int(index.max()) >= n):
                raise ValueError(f"{part}_index: node {int(index.max())}: expected node ids in "
                                 f"[0, {n})")
        if self.train_index.size == 0:
            raise ValueError(f"train_index: empty: expected at least one training node of {n}")

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return self.features.shape[0]

    @property
    def n_features(self) -> int:
        """Width of the node features."""
        return self.features.shape[1]

    def to(self, xp, dtype=np.float32) -> "GraphData":
        """A copy with features, labels and indices on the backend ``xp``.

        The adjacency stays a ``scipy.sparse`` matrix: the GCN's layers move their own
        copy (:meth:`dfa_bridge.nn.layers.GraphConv.to`).
        """
        move = lambda a: asarray_like(a, xp)  # noqa: E731
        return dataclasses.replace(
            self, features=move(self.features).astype(dtype, copy=False),
            labels=move(self.labels), train_index=move(self.train_index),
            val_index=move(self.val_index), test_index=move(self.test_index))

    def feature_dataset(self) -> Dataset:
        """The features-only task (no graph) on the same train and test nodes."""
        return Dataset(f"{self.name}-features", self.features[self.train_index],
                       self.labels[self.train_index], self.features[self.test_index],
                       self.labels[self.test_index], self.n_classes)

    def describe(self) -> dict:
        """Plain-data description for reports."""
        n_edges = (self.adjacency.nnz - self.n_nodes) // 2
        return {"name": self.name, "n_nodes": self.n_nodes, "n_edges": int(n_edges),
                "n_features": self.n_features, "n_classes": self.n_classes,
                "n_train": int(self.train_index.shape[0]), "n_val": int(self.val_index.shape[0]),
                "n_test": int(self.test_index.shape[0])}


def normalized_adjacency(adjacency) -> sp.csr_matrix:
    """``A_hat = D^-1/2 (A + I) D^-1/2`` of a graph (Kipf & Welling 2017).

    ``A`` is made symmetric and binary with no self-loops (``A_ij = 1`` when either
    direction has an entry), then one self-loop per node is added; ``D`` holds the
    degrees of ``A + I`` (all >= 1).

    Parameters
    ----------
    adjacency : (n, n) sparse or dense matrix

    Returns
    -------
    scipy.sparse.csr_matrix
        float32, symmetric, eigenvalues in ``(-1, 1]``.
    """
    matrix = sp.csr_matrix(adjacency, dtype=np.float64)
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"adjacency: shape {matrix.shape}: expected a square matrix")
    matrix = abs(matrix) + abs(matrix.T)
    matrix = matrix - sp.diags(matrix.diagonal())
    matrix.eliminate_zeros()
    matrix.data[:] = 1.0
    matrix = matrix + sp.identity(matrix.shape[0], format="csr")
    scale = sp.diags(1.0 / np.sqrt(np.asarray(matrix.sum(axis=1)).ravel()))
    return (scale @ matrix @ scale).tocsr().astype(np.float32)


def planetoid_split(labels: np.ndarray, n_classes: int, train_per_class: int, n_val: int,
                    n_test: int, rng: np.random.Generator):
    """Random split: ``train_per_class`` nodes of each class, then ``n_val`` and ``n_test``.

    Returns
    -------
    (train_index, val_index, test_index)
        Sorted int64 arrays of distinct nodes.
    """
    order = rng.permutation(labels.shape[0])
    train = np.concatenate([order[labels[order] == k][:train_per_class] for k in range(n_classes)])
    rest = order[~np.isin(order, train)]
    if rest.size < n_val + n_test:
        raise ValueError(f"n_val + n_test = {n_val + n_test}: expected at most the {rest.size} nodes "
                         "left after the training nodes")
    return np.sort(train), np.sort(rest[:n_val]), np.sort(rest[n_val:n_val + n_test])


def _pairs_within(count: int, n: int, rng: np.random.Generator):
    """``count`` distinct pairs ``i < j`` of ``n`` items, uniformly (rows, cols)."""
    k = rng.choice(n * (n - 1) // 2, size=count, replace=False).astype(np.int64)
    # Invert the row-major index of the strict upper triangle (np.triu_indices(n, 1) order).
    i = n - 2 - np.floor(np.sqrt(-8.0 * k + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5).astype(np.int64)
    j = k + i + 1 - n * (n - 1) // 2 + (n - i) * (n - i - 1) // 2
    return i, j


def _pairs_between(count: int, n_a: int, n_b: int, rng: np.random.Generator):
    """``count`` distinct pairs of ``n_a x n_b`` items, uniformly (rows, cols)."""
    k = rng.choice(n_a * n_b, size=count, replace=False).astype(np.int64)
    return k // n_b, k % n_b


def contextual_sbm(n_nodes: int = 2000, n_classes: int = 5, n_features: int = 500,
                   mean_degree: float = 5.0, homophily: float = 0.6,
                   feature_signal: float = 3.0, train_per_class: int = 20, n_val: int = 500,
                   n_test: int = 1000, seed: int = 0) -> GraphData:
    """A contextual stochastic block model (Deshpande et al., NeurIPS 2018), ``C`` classes.

    Nodes get balanced classes ``y_v``. Features are class means plus noise,
    ``x_v = mu_{y_v} + z_v`` with ``z_v ~ N(0, I_d)`` and ``mu_k ~ N(0, (s^2/d) I_d)``
    (``|mu_k| ~ s``, the ``feature_signal``). Edges are independent: nodes of the same
    class connect with probability ``p_in``, of different classes with ``p_out``, set so
    that the expected degree is ``mean_degree`` and a fraction ``homophily`` of a node's
    edges stay within its class::

        p_in = h d / (n/C - 1),   p_out = (1 - h) d / (n - n/C)

    Edges are drawn block by block of class pairs: a binomial number of edges, then as
    many distinct node pairs uniformly, which is exactly independent Bernoulli edges,
    in memory O(edges).

    Parameters
    ----------
    n_nodes, n_classes, n_features
        Sizes (``n_nodes`` a multiple of ``n_classes``).
    mean_degree
        Expected degree ``d``.
    homophily
        Expected fraction ``h`` of edges within a class, in ``[0, 1]`` (``1/C``: the
        graph says nothing about the classes).
    feature_signal
        ``s``, the norm of the class means against unit noise per feature.
    train_per_class, n_val, n_test
        Split (as the Planetoid benchmarks: a few labelled nodes per class).
    seed
        Seed of the graph, the features and the split (independent streams).
    """
    for name, value in (("n_nodes", n_nodes), ("n_classes", n_classes), ("n_features", n_features)):
        check_int(name, value)
    if n_classes < 2 or n_nodes % n_classes:
        raise ValueError(f"n_classes = {n_classes!r}: expected at least 2 classes dividing "
                         f"n_nodes = {n_nodes}")
    if not 0 <= homophily <= 1:
        raise ValueError(f"homophily = {homophily!r}: expected a fraction in [0, 1]")
    per_class = n_nodes // n_classes
    p_in = homophily * mean_degree / (per_class - 1)
    p_out = (1 - homophily) * mean_degree / (n_nodes - per_class)
    if not (mean_degree >= 0 and p_in <= 1 and p_out <= 1):
        raise ValueError(f"mean_degree = {mean_degree!r}: expected a degree >= 0 that keeps the "
                         f"edge probabilities within [0, 1] (p_in = {p_in:.3g}, p_out = {p_out:.3g})")
    graph_seed, feature_seed, split_seed = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(graph_seed)
    labels = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    members = [np.flatnonzero(labels == k) for k in range(n_classes)]
    rows, cols = [], []
    for a in range(n_classes):
        for b in range(a, n_classes):
            if a == b:
                count = rng.binomial(per_class * (per_class - 1) // 2, p_in)
                i, j = _pairs_within(count, per_class, rng)
            else:
                count = rng.binomial(per_class * per_class, p_out)
                i, j = _pairs_between(count, per_class, per_class, rng)
            rows.append(members[a][i])
            cols.append(members[b][j])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    edges = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n_nodes, n_nodes))
    feature_rng = np.random.default_rng(feature_seed)
    means = feature_rng.standard_normal((n_classes, n_features)) * (feature_signal / math.sqrt(n_features))
    features = (means[labels] + feature_rng.standard_normal((n_nodes, n_features))).astype(np.float32)
    split = planetoid_split(labels, n_classes, train_per_class, n_val, n_test,
                            np.random.default_rng(split_seed))
    return GraphData("csbm", features, labels.astype(np.int64), normalized_adjacency(edges),
                     *split, n_classes)


class _PlanetoidUnpickler(pickle.Unpickler):
    """Unpickles only what Planetoid files hold: NumPy arrays, SciPy sparse matrices, dicts.

    A pickle can call any importable function; refusing every other class keeps a file
    from running code while it loads.
    """

    _SPARSE = {"csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dok_matrix",
               "csr_array", "csc_array", "coo_array", "lil_array", "dok_array"}
    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
        ("collections", "defaultdict"),
        ("copyreg", "_reconstructor"), ("builtins", "object"), ("builtins", "list"),
        ("builtins", "dict"), ("builtins", "set"), ("builtins", "int"), ("builtins", "tuple"),
    }

    #: Python 2 spellings, as in the original files (and in protocol-2 pickles of Python 3)
    _PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

    def find_class(self, module, name):
        checked = (self._PYTHON2_MODULES.get(module, module), name)
        if module.startswith("scipy.sparse") and name in self._SPARSE:
            return getattr(sp, name)  # the public name: old private modules are deprecated
        if checked in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: expected NumPy arrays, "
                                     "SciPy sparse matrices and dicts of lists only")


def _unpickle(path: pathlib.Path):
    if not path.is_file():
        raise FileNotFoundError(f"path = '{path.parent}': expected the Planetoid file '{path.name}' "
                                "in it; not found")
    with open(path, "rb") as stream:
        try:
            return _PlanetoidUnpickler(stream, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, UnicodeDecodeError) as error:
            raise ValueError(f"Planetoid file '{path}': {type(error).__name__}: {error or 'empty'}"
                             ": expected a pickled Planetoid array or graph") from error


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.todense() if sp.issparse(matrix) else matrix, dtype=np.float64)


def load_planetoid(path, name: str) -> GraphData:
    """A Planetoid citation graph (Cora, CiteSeer, PubMed) from the files of Kipf & Welling.

    Reads ``ind.<name>.{x,tx,allx}`` (sparse feature rows of the training, test and all
    non-test nodes), ``ind.<name>.{y,ty,ally}`` (one-hot labels), ``ind.<name>.graph`` (a
    dict of adjacency lists) and ``ind.<name>.test.index`` (test node ids, one a line),
    as in the gcn repository's ``load_data``: node ``i < len(allx)`` has row ``i`` of
    ``allx``, the ``k``-th test node has row ``k`` of ``tx``; nodes in the test id range
    without a row (CiteSeer's isolated nodes) get zero features and belong to no split.
    Features are row-normalized (each row sums to one). The split is the standard one:
    train = the ``len(y)`` first nodes, validation = the next 500, test = the test ids.

    Parameters
    ----------
    path
        Directory holding the files.
    name
        ``"cora"``, ``"citeseer"`` or ``"pubmed"`` (the files' infix).
    """
    check_choice("name", name, PLANETOID_NAMES)
    directory = pathlib.Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"path = '{path}': expected a directory holding the "
                                f"ind.{name}.* Planetoid files")
    parts = {key: _unpickle(directory / f"ind.{name}.{key}")
             for key in ("x", "y", "tx", "ty", "allx", "ally", "graph")}
    index_path = directory / f"ind.{name}.test.index"
    if not index_path.is_file():
        raise FileNotFoundError(f"path = '{path}': expected the Planetoid file "
                                f"'{index_path.name}' in it; not found")
    try:
        test_ids = np.loadtxt(index_path, dtype=np.int64, ndmin=1)
    except ValueError as error:
        raise ValueError(f"Planetoid file '{index_path}': {error}: expected one integer node id "
                         "a line") from error
    if test_ids.size == 0:
        raise ValueError(f"Planetoid file '{index_path}': empty: expected the test node ids")
    for key in ("x", "y", "tx", "ty", "allx", "ally"):
        if not (sp.issparse(parts[key]) or isinstance(parts[key], np.ndarray)) \
                or len(parts[key].shape) != 2:
            raise ValueError(f"Planetoid file 'ind.{name}.{key}' in '{directory}': "
                             f"{type(parts[key]).__name__}: expected a 2-D array or sparse matrix")
    if not isinstance(parts["graph"], dict):
        raise ValueError(f"Planetoid file 'ind.{name}.graph' in '{directory}': "
                         f"{type(parts['graph']).__name__}: expected a dict of adjacency lists")
    allx, ally, tx, ty = (_dense(parts[k]) for k in ("allx", "ally", "tx", "ty"))
    for rows_of, labels_of in (("allx", "ally"), ("tx", "ty"), ("x", "y")):
        if parts[rows_of].shape[0] != parts[labels_of].shape[0]:
            raise ValueError(f"ind.{name}.{rows_of}, .{labels_of}: {parts[rows_of].shape[0]} and "
                             f"{parts[labels_of].shape[0]} rows: expected one label row per "
                             "feature row")
    if tx.shape[1] != allx.shape[1] or ty.shape[1] != ally.shape[1]:
        raise ValueError(f"ind.{name}.tx, .ty: widths {tx.shape[1]}, {ty.shape[1]}: expected "
                         f"those of allx and ally ({allx.shape[1]}, {ally.shape[1]})")
    n_known, n_labelled = allx.shape[0], _dense(parts["y"]).shape[0]
    graph = parts["graph"]
    if tx.shape[0] != test_ids.size or ty.shape[0] != test_ids.size:
        raise ValueError(f"ind.{name}.tx, .ty: {tx.shape[0]} and {ty.shape[0]} rows: expected one "
                         f"per test id ({test_ids.size} in {index_path.name})")
    if test_ids.min() < n_known:
        raise ValueError(f"{index_path.name}: test id {int(test_ids.min())}: expected ids >= "
                         f"{n_known}, after the allx rows")
    neighbours = [np.asarray(list(graph[node]), np.int64) for node in graph]
    largest_node = max([int(test_ids.max())] + [int(n.max()) for n in neighbours if n.size]
                       + [int(node) for node in graph])
    n_nodes = max(n_known, largest_node + 1)
    features = np.zeros((n_nodes, allx.shape[1]))
    features[:n_known], features[test_ids] = allx, tx
    onehot = np.zeros((n_nodes, ally.shape[1]))
    onehot[:n_known], onehot[test_ids] = ally, ty
    row_sums = features.sum(axis=1, keepdims=True)
    features = np.divide(features, row_sums, out=np.zeros_like(features), where=row_sums != 0)
    rows = np.repeat(np.asarray(list(graph), np.int64), [n.size for n in neighbours])
    cols = np.concatenate(neighbours) if neighbours else np.zeros(0, np.int64)
    edges = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n_nodes, n_nodes))
    train = np.arange(n_labelled)
    val = np.arange(n_labelled, min(n_labelled + 500, n_known))
    return GraphData(name, features.astype(np.float32), onehot.argmax(axis=1).astype(np.int64),
                     normalized_adjacency(edges), train, val, np.sort(test_ids), onehot.shape[1])
