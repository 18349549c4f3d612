"""Data loaders on files written here in their standard formats, and the block-model generator."""

import collections
import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import scipy.sparse as sp

from dfa_bridge.data.tabular import Dataset, load_digits, load_mnist, read_idx, stratified_split
from dfa_bridge.data import load_dataset
from dfa_bridge.data.graphs import contextual_sbm, load_planetoid, normalized_adjacency


# ------------------------------------------------------------- embedded graphs
@pytest.mark.parametrize("name, shape, n_classes, split", [
    ("cora", (2708, 1433), 7, (140, 500, 1000)),
    ("citeseer", (3327, 3703), 6, (120, 500, 1000)),
])
def test_cora_and_citeseer_ship_with_the_package(name, shape, n_classes, split):
    graph = load_dataset(name)  # no path: the embedded files
    assert graph.features.shape == shape and graph.n_classes == n_classes
    assert tuple(len(i) for i in (graph.train_index, graph.val_index, graph.test_index)) == split
    parts = [set(map(int, i)) for i in (graph.train_index, graph.val_index, graph.test_index)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert np.all(np.bincount(np.asarray(graph.labels)[graph.train_index],
                              minlength=n_classes) == split[0] // n_classes)  # 20 per class
    np.testing.assert_allclose(graph.adjacency.toarray(), graph.adjacency.toarray().T)
    row_sums = graph.features.sum(axis=1)
    np.testing.assert_allclose(row_sums[row_sums > 0], 1.0, rtol=1e-5)  # row-normalized


def test_embedded_files_match_their_checksums_and_carry_provenance_and_licence():
    import hashlib
    from dfa_bridge.data.graphs import PLANETOID_DIRECTORY
    sums = (PLANETOID_DIRECTORY / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in sums if line.strip())
    assert sorted(listed) == sorted(f"ind.{n}.{k}" for n in ("cora", "citeseer") for k in
                                    ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"))
    for file, digest in listed.items():
        assert hashlib.sha256((PLANETOID_DIRECTORY / file).read_bytes()).hexdigest() == digest
    readme = (PLANETOID_DIRECTORY / "README.md").read_text()
    assert "Kipf" in readme and "MIT" in readme and "Sen" in readme
    assert "MIT License" in (PLANETOID_DIRECTORY / "LICENSE-gcn-repo.txt").read_text()


def test_a_user_path_replaces_the_embedded_files_and_the_fingerprint_follows_content(tmp_path):
    import shutil
    from dfa_bridge.data import data_fingerprint
    from dfa_bridge.data.graphs import PLANETOID_DIRECTORY
    for file in PLANETOID_DIRECTORY.glob("ind.cora.*"):
        shutil.copy(file, tmp_path / file.name)
    embedded, copied = load_dataset("cora"), load_dataset("cora", tmp_path)
    assert data_fingerprint(embedded) == data_fingerprint(copied)  # same content, same key
    ids = np.loadtxt(tmp_path / "ind.cora.test.index", dtype=np.int64)
    np.savetxt(tmp_path / "ind.cora.test.index", ids[:-1], fmt="%d")  # one test node fewer
    with pytest.raises(ValueError, match=r"ind\.cora\.tx, \.ty: 1000 and 1000 rows: expected one "
                                         r"per test id \(999"):
        load_dataset("cora", tmp_path)
    edited = load_dataset("cora")
    edited.labels = edited.labels.copy()
    edited.labels[0] = (edited.labels[0] + 1) % edited.n_classes
    assert data_fingerprint(edited) != data_fingerprint(embedded)
    digits = load_dataset("digits", seed=0)
    assert data_fingerprint(digits) == data_fingerprint(load_dataset("digits", seed=0))
    assert data_fingerprint(digits) != data_fingerprint(load_dataset("digits", seed=1))
    with pytest.raises(TypeError, match=r"data = dict: expected a data set"):
        data_fingerprint({"x": 1})


# ---------------------------------------------------------------------- digits
def test_digits_ship_with_the_package_and_split_by_class():
    data = load_digits(test_fraction=0.25, seed=0)
    assert data.x_train.shape == (1347, 64) and data.x_test.shape == (450, 64)
    assert data.x_train.dtype == np.float32 and data.n_classes == 10
    train_counts = np.bincount(data.y_train, minlength=10)
    test_counts = np.bincount(data.y_test, minlength=10)
    np.testing.assert_allclose(test_counts / (train_counts + test_counts), 0.25, atol=0.01)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)  # centred on train
    assert np.abs(data.x_train).max() < 20  # std floored: no blown-up constant pixel


def test_stratified_split_is_a_seeded_partition():
    labels = np.repeat(np.arange(3), [10, 20, 30])
    train, test = stratified_split(labels, 0.2, seed=1)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == 60
    np.testing.assert_array_equal(np.bincount(labels[test]), [2, 4, 6])
    again = stratified_split(labels, 0.2, seed=1)
    np.testing.assert_array_equal(again[1], test)


# ---------------------------------------------------------------------- MNIST IDX
def write_idx(path, array, code):
    """Write ``array`` in the IDX format: magic 0x0000 <code> <ndim>, big-endian dims and data."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + np.asarray(array, dtype).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(content)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 4, 3), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(12, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 4, 3), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([3, 1, 4, 1, 5], np.uint8),
    }
    for name, array in arrays.items():
        write_idx(tmp_path / name, array, 0x08)
    return tmp_path, arrays


def test_idx_reader_reads_what_was_written_plain_and_gzipped(mnist_dir):
    directory, arrays = mnist_dir
    for name, array in arrays.items():
        np.testing.assert_array_equal(read_idx(directory / name), array)
    floats = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    write_idx(directory / "floats.idx", floats, 0x0D)
    np.testing.assert_array_equal(read_idx(directory / "floats.idx"), floats)


def test_mnist_loader_flattens_standardizes_and_keeps_the_split(mnist_dir):
    directory, arrays = mnist_dir
    data = load_mnist(directory)
    assert data.x_train.shape == (12, 12) and data.x_test.shape == (5, 12)
    np.testing.assert_array_equal(data.y_test, [3, 1, 4, 1, 5])
    assert data.n_classes == 10
    raw_train = arrays["train-images-idx3-ubyte"].reshape(12, -1).astype(np.float64)
    raw_test = arrays["t10k-images-idx3-ubyte.gz"].reshape(5, -1).astype(np.float64)
    std = np.maximum(raw_train.std(axis=0), 0.25 * 255)
    expected = (raw_test - raw_train.mean(axis=0)) / std
    np.testing.assert_allclose(data.x_test, expected, rtol=1e-5, atol=1e-6)


def test_bad_idx_files_are_refused_with_the_file_and_what_was_expected(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"IDX file '.*bad': magic 0x01020801: expected 0x0000"):
        read_idx(bad_magic)
    truncated = tmp_path / "short"
    truncated.write_bytes(struct.pack(">HBBI", 0, 8, 1, 10) + b"\x00" * 4)
    with pytest.raises(ValueError, match=r"12 bytes: expected 18 for an array of shape \(10,\)"):
        read_idx(truncated)
    with pytest.raises(FileNotFoundError, match=r"path = '.*nowhere': expected an IDX file"):
        read_idx(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"expected the MNIST file 'train-images-idx3-ubyte'"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------------- block model
def test_block_model_has_the_requested_degree_homophily_and_split():
    graph = contextual_sbm(n_nodes=3000, n_classes=3, n_features=20, mean_degree=6.0,
                           homophily=0.8, feature_signal=2.0, train_per_class=10, n_val=100,
                           n_test=500, seed=1)
    n = graph.n_nodes
    a = graph.adjacency.toarray()
    edges = (a > 0) & ~np.eye(n, dtype=bool)
    np.testing.assert_array_equal(edges, edges.T)
    degree = edges.sum(axis=1)
    assert degree.mean() == pytest.approx(6.0, rel=0.05)
    same = graph.labels[:, None] == graph.labels[None, :]
    assert (edges & same).sum() / edges.sum() == pytest.approx(0.8, abs=0.02)
    np.testing.assert_array_equal(np.bincount(graph.labels), [1000, 1000, 1000])
    np.testing.assert_array_equal(np.bincount(graph.labels[graph.train_index]), [10, 10, 10])
    parts = [graph.train_index, graph.val_index, graph.test_index]
    assert [p.size for p in parts] == [30, 100, 500]
    assert np.unique(np.concatenate(parts)).size == 630
    means = np.array([graph.features[graph.labels == k].mean(axis=0) for k in range(3)])
    assert np.linalg.norm(means, axis=1) == pytest.approx([2.0] * 3, rel=0.35)  # |mu_k| ~ s
    np.testing.assert_allclose(graph.features.std(axis=0).mean(), np.sqrt(1 + 4 / 20), rtol=0.1)


def test_block_model_with_certain_edges_is_complete_within_classes():
    graph = contextual_sbm(n_nodes=40, n_classes=4, n_features=3, mean_degree=9.0, homophily=1.0,
                           train_per_class=2, n_val=5, n_test=10, seed=0)
    edges = graph.adjacency.toarray() > 0
    same = graph.labels[:, None] == graph.labels[None, :]
    np.testing.assert_array_equal(edges, same)  # p_in = 1: every pair within a class, no other


def test_block_model_is_seeded():
    small = dict(n_nodes=200, n_val=50, n_test=50)
    a, b = contextual_sbm(**small, seed=3), contextual_sbm(**small, seed=3)
    assert (a.adjacency != b.adjacency).nnz == 0
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    assert (contextual_sbm(**small, seed=4).adjacency != a.adjacency).nnz > 0


# ---------------------------------------------------------------------- Planetoid
def write_planetoid(directory, name="toy", protocol=2):
    """Files in the format of Kipf & Welling's gcn repository (one gap in the test range)."""
    rng = np.random.default_rng(0)
    n_features, n_classes = 6, 3
    allx = sp.csr_matrix(rng.integers(0, 2, (6, n_features)).astype(np.float32))
    ally = np.eye(n_classes)[rng.integers(0, n_classes, 6)]
    test_ids = np.array([9, 6, 8])  # node 7 is in the test range but has no row (CiteSeer)
    tx = sp.csr_matrix(rng.integers(1, 3, (3, n_features)).astype(np.float32))
    ty = np.eye(n_classes)[[2, 0, 1]]
    graph = collections.defaultdict(list, {0: [1, 2], 1: [0], 2: [0, 9], 3: [4], 4: [3],
                                           5: [], 6: [8], 8: [6], 9: [2, 9]})
    parts = {"x": allx[:2], "y": ally[:2], "tx": tx, "ty": ty, "allx": allx, "ally": ally,
             "graph": graph}
    for key, value in parts.items():
        with open(directory / f"ind.{name}.{key}", "wb") as stream:
            pickle.dump(value, stream, protocol=protocol)
    (directory / f"ind.{name}.test.index").write_text("\n".join(map(str, test_ids)) + "\n")
    return parts, test_ids


@pytest.mark.parametrize("protocol", [0, 2])  # the original files are Python 2 pickles
def test_planetoid_loader_places_rows_builds_the_graph_and_the_standard_split(tmp_path, protocol):
    parts, test_ids = write_planetoid(tmp_path, "cora", protocol)
    graph = load_planetoid(tmp_path, "cora")
    assert graph.n_nodes == 10 and graph.n_classes == 3
    rows = np.zeros((10, 6))
    rows[:6] = parts["allx"].toarray()
    rows[test_ids] = parts["tx"].toarray()  # the k-th test id takes row k of tx
    sums = rows.sum(axis=1, keepdims=True)
    expected = np.divide(rows, sums, out=np.zeros_like(rows), where=sums > 0)
    np.testing.assert_allclose(graph.features, expected, rtol=1e-6)
    np.testing.assert_array_equal(graph.labels[test_ids], [2, 0, 1])
    np.testing.assert_array_equal(graph.labels[:6], parts["ally"].argmax(axis=1))
    np.testing.assert_array_equal(graph.train_index, [0, 1])
    np.testing.assert_array_equal(graph.val_index, [2, 3, 4, 5])
    np.testing.assert_array_equal(graph.test_index, [6, 8, 9])
    dense = np.zeros((10, 10))
    for node, neighbours in parts["graph"].items():
        dense[node, neighbours] = 1
    np.testing.assert_allclose(graph.adjacency.toarray(),
                               normalized_adjacency(sp.csr_matrix(dense)).toarray())
    assert graph.adjacency[9, 9] == pytest.approx(1 / 2)  # one self-loop, degree 2 with node 2


def test_planetoid_loader_refuses_code_in_a_pickle_and_missing_files(tmp_path):
    write_planetoid(tmp_path, "pubmed")

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "ind.pubmed.graph", "wb") as stream:
        pickle.dump(Payload(), stream)
    with pytest.raises(ValueError, match=r"refusing to unpickle (posix|nt|os)\.system"):
        load_planetoid(tmp_path, "pubmed")
    (tmp_path / "ind.pubmed.ty").unlink()
    with pytest.raises(FileNotFoundError, match=r"expected the Planetoid file 'ind.pubmed.ty'"):
        load_planetoid(tmp_path, "pubmed")


@pytest.mark.parametrize("call, error, message", [
    (lambda p: load_dataset("imagenet"), ValueError,
     r"data = 'imagenet': expected one of 'digits', 'mnist', .*'csbm', 'cora', 'citeseer', 'pubmed'"),
    (lambda p: load_dataset("pubmed"), ValueError,
     r"path = None: expected the directory of the pubmed files"),
    (lambda p: load_dataset("mnist", p / "missing"), FileNotFoundError,
     r"path = '.*missing': expected a directory holding the MNIST IDX files"),
    (lambda p: load_planetoid(p, "reddit"), ValueError,
     r"name = 'reddit': expected one of 'cora', 'citeseer', 'pubmed'"),
    (lambda p: contextual_sbm(n_nodes=100, n_classes=3), ValueError,
     r"n_classes = 3: expected at least 2 classes dividing n_nodes = 100"),
    (lambda p: contextual_sbm(n_nodes=20, n_classes=2, mean_degree=50.0), ValueError,
     r"mean_degree = 50.0: expected a degree >= 0 that keeps the edge probabilities"),
])
def test_bad_dataset_arguments_are_refused(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)


def test_written_files_train_end_to_end(tmp_path, mnist_dir):
    from dfa_bridge.training.experiment import run_experiment

    directory, _ = mnist_dir
    result, _ = run_experiment("mlp", "mnist", "dfa", data_path=directory, epochs=2,
                               batch_size=4, progress=False)
    assert result["data"]["n_train"] == 12 and 0 <= result["test_accuracy"] <= 1
    write_planetoid(tmp_path, "citeseer")
    result, _ = run_experiment("gcn", "citeseer", "dfa", data_path=tmp_path, epochs=3,
                               progress=False)
    assert result["data"]["n_nodes"] == 10 and "val_accuracy" in result


def _write_idx(path, array, code=0x08):
    import struct as _struct
    header = _struct.pack(">HBB", 0, code, array.ndim) + _struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def _mnist_dir(tmp_path, y_train, y_test, x_train=None):
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (len(y_train), 4, 4)).astype(np.uint8) if x_train is None else x_train
    x_test = rng.integers(0, 256, (len(y_test), 4, 4)).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", x_train, 0x08 if x_train.dtype == np.uint8 else 0x0D)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.asarray(y_train, np.uint8))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x_test)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.asarray(y_test, np.uint8))
    return tmp_path


def test_bad_mnist_files_are_named_and_refused(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    _mnist_dir(good, np.arange(20) % 4, np.arange(8) % 4)
    assert load_mnist(good).n_classes == 4
    stray = tmp_path / "stray"
    stray.mkdir()
    _mnist_dir(stray, np.r_[np.arange(19) % 4, 255], np.arange(5) % 4)
    with pytest.raises(ValueError, match=r"class 4 has no training image.*expected labels 0 \.\. C-1"):
        load_mnist(stray)
    nan = tmp_path / "nan"
    nan.mkdir()
    _mnist_dir(nan, np.arange(8) % 2, np.arange(4) % 2, x_train=np.full((8, 4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN or infinite: expected finite features"):
        load_mnist(nan)
    empty = tmp_path / "empty"
    empty.mkdir()
    _mnist_dir(empty, np.zeros(0, np.uint8), np.arange(4) % 2)
    with pytest.raises(ValueError, match="MNIST train files .*0 images: expected at least one training and one test image"):
        load_mnist(empty)
    fake_gz = tmp_path / "fake.idx.gz"
    fake_gz.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match=r"fake\.idx\.gz'.*expected a complete gzip file"):
        read_idx(fake_gz)
    import gzip as _gzip
    truncated = tmp_path / "cut.idx.gz"
    truncated.write_bytes(_gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09" + bytes(9))[:-6])
    with pytest.raises(ValueError, match=r"cut\.idx\.gz'"):
        read_idx(truncated)


def test_datasets_refuse_labels_outside_the_classes_and_empty_parts():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"label -1: expected labels in \[0, 3\)"):
        Dataset("d", x, np.array([0, 1, 2, -1]), x, np.array([0, 1, 2, 0]), 3)
    with pytest.raises(ValueError, match=r"label 9: expected labels in \[0, 3\)"):
        Dataset("d", x, np.array([0, 1, 2, 0]), x, np.array([0, 1, 2, 9]), 3)
    with pytest.raises(ValueError, match="expected at least one sample"):
        Dataset("d", x[:0], np.zeros(0, np.int64), x, np.array([0, 1, 2, 0]), 3)
    with pytest.raises(ValueError, match="expected integer class labels"):
        Dataset("d", x, np.zeros(4), x, np.zeros(4, np.int64), 3)


def test_broken_planetoid_files_are_named(tmp_path):
    from dfa_bridge.data.graphs import load_planetoid

    for key in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        (tmp_path / f"ind.cora.{key}").write_bytes(b"")
    (tmp_path / "ind.cora.test.index").write_text("1\n2\n")
    with pytest.raises(ValueError, match=r"ind\.cora\.x'.*expected a pickled Planetoid"):
        load_planetoid(tmp_path, "cora")
