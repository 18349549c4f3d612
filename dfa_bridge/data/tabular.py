"""Tabular classification data: scikit-learn's digits (shipped) and MNIST from IDX files.

Every loader returns a :class:`Dataset`: float32 features ``(n, d)``, int64 labels in
``[0, C)``, a train and a test part. Pixels are standardized per pixel with the
statistics of the training part only (:func:`standardize_pixels`).
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import struct

import numpy as np

from photon.support.arrays import array_module, asarray_like

__all__ = ["Dataset", "stratified_split", "standardize_pixels", "load_digits", "read_idx",
           "load_mnist", "MNIST_FILES", "check_labels", "check_features"]


def check_labels(labels, n_classes: int, what: str) -> None:
    """Refuse labels that are not integers in ``[0, n_classes)``.

    Parameters
    ----------
    labels : (n,) array
        NumPy or CuPy.
    n_classes
        The number of classes.
    what
        The labels' name in the message (``"y_train"``, ``"labels"``, a file).
    """
    kind = getattr(getattr(labels, "dtype", None), "kind", None)
    if kind not in ("i", "u"):
        raise ValueError(f"{what}: dtype {getattr(labels, 'dtype', type(labels).__name__)}: "
                         "expected integer class labels")
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{what}: label {bad}: expected labels in [0, {n_classes}) "
                             f"for {n_classes} classes")


def check_features(x, what: str) -> None:
    """Refuse features with NaN or infinite values (naming how many)."""
    xp = array_module(x)
    finite = xp.isfinite(x)
    if not bool(finite.all()):
        raise ValueError(f"{what}: {int(x.size - finite.sum())} of {x.size} values are NaN or "
                         "infinite: expected finite features")


@dataclasses.dataclass
class Dataset:
    """A classification task with a train and a test part.

    Attributes
    ----------
    name
        A label.
    x_train, x_test : (n_train, d), (n_test, d) arrays
        Features (float32).
    y_train, y_test : (n_train,), (n_test,) arrays
        Integer labels in ``[0, n_classes)``.
    n_classes
        Number of classes.
    """

    name: str
    x_train: object
    y_train: object
    x_test: object
    y_test: object
    n_classes: int

    def __post_init__(self):
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 2 or y.shape != (x.shape[0],):
                raise ValueError(f"x_{part}, y_{part}: shapes {x.shape}, {y.shape}: expected "
                                 "(n, n_features) and (n,)")
        if self.x_test.shape[1] != self.x_train.shape[1]:
            raise ValueError(f"x_test: shape {self.x_test.shape}: expected "
                             f"{self.x_train.shape[1]} features like x_train")
        if isinstance(self.n_classes, bool) or int(self.n_classes) != self.n_classes \
                or self.n_classes < 2:
            raise ValueError(f"n_classes = {self.n_classes!r}: expected an integer >= 2")
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.shape[0] == 0 or x.shape[1] == 0:
                raise ValueError(f"x_{part}: shape {x.shape}: expected at least one sample "
                                 "and one feature")
            check_labels(y, self.n_classes, f"{self.name} y_{part}")
            check_features(x, f"{self.name} x_{part}")

    @property
    def n_features(self) -> int:
        """Input width."""
        return self.x_train.shape[1]

    def to(self, xp, dtype=np.float32) -> "Dataset":
        """A copy on the backend ``xp`` with features of ``dtype``."""
        return dataclasses.replace(
            self, x_train=asarray_like(self.x_train, xp).astype(dtype, copy=False),
            x_test=asarray_like(self.x_test, xp).astype(dtype, copy=False),
            y_train=asarray_like(self.y_train, xp), y_test=asarray_like(self.y_test, xp))

    def describe(self) -> dict:
        """Plain-data description for reports."""
        return {"name": self.name, "n_train": int(self.x_train.shape[0]),
                "n_test": int(self.x_test.shape[0]), "n_features": self.n_features,
                "n_classes": self.n_classes}


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Indices ``(train, test)`` holding ``test_fraction`` of every class out for test.

    Parameters
    ----------
    labels : (n,) int array
    test_fraction
        In ``(0, 1)``; each class gives ``round(test_fraction * n_class)`` samples.
    seed
        Seed of the split.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction = {test_fraction!r}: expected a fraction in (0, 1)")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(test_fraction * members.size))
        test.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def standardize_pixels(x_train: np.ndarray, x_test: np.ndarray, full_scale: float,
                       min_std_fraction: float = 0.25):
    """Per-pixel z-score with the training statistics, the std floored.

    ``x -> (x - mean) / max(std, min_std_fraction * full_scale)``: a pixel that is nearly
    constant over the training images (a border pixel) is not blown up by its tiny std.

    Parameters
    ----------
    x_train, x_test : (n, d) arrays
        Raw pixels in ``[0, full_scale]``.
    full_scale
        Largest pixel value (16 for digits, 255 for MNIST).
    min_std_fraction
        Floor of the std as a fraction of ``full_scale``.

    Returns
    -------
    (x_train, x_test)
        float32.
    """
    x_train = np.asarray(x_train, np.float32)
    x_test = np.asarray(x_test, np.float32)
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = np.maximum(x_train.std(axis=0, dtype=np.float64), min_std_fraction * full_scale)
    mean, scale = mean.astype(np.float32), (1.0 / std).astype(np.float32)
    return (x_train - mean) * scale, (x_test - mean) * scale


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits: 1,797 images of 8 x 8 pixels (0..16), 10 classes.

    Ships with scikit-learn, no download.

    Parameters
    ----------
    test_fraction
        Fraction of each class held out for test.
    seed
        Seed of the split.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # noqa: PLC0415

    bunch = sklearn_digits()
    labels = bunch.target.astype(np.int64)
    train, test = stratified_split(labels, test_fraction, seed)
    x_train, x_test = standardize_pixels(bunch.data[train], bunch.data[test], 16.0)
    return Dataset("digits", x_train, labels[train], x_test, labels[test], 10)


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_binary(path: pathlib.Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzipped.

    The header is big-endian: two zero bytes, a type code (0x08 unsigned byte, 0x09
    byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions,
    then each dimension as a uint32; the data follow, big-endian, row-major. MNIST images
    have magic ``0x00000803`` (n, 28, 28), labels ``0x00000801`` (n,).

    Parameters
    ----------
    path
        File path (``.gz`` is decompressed).

    Returns
    -------
    numpy.ndarray
        In native byte order.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path = '{path}': expected an IDX file; none there")
    try:
        with _open_binary(path) as stream:
            content = stream.read()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"IDX file '{path}': {error}: expected a complete gzip file "
                         "(or a plain IDX file without the .gz suffix)") from error
    if len(content) < 4:
        raise ValueError(f"IDX file '{path}': {len(content)} bytes: expected a 4-byte magic header")
    zero, code, n_dims = struct.unpack(">HBB", content[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise ValueError(f"IDX file '{path}': magic 0x{content[:4].hex()}: expected 0x0000 then a "
                         "type code (08, 09, 0B, 0C, 0D, 0E) and the number of dimensions")
    header = 4 + 4 * n_dims
    if len(content) < header:
        raise ValueError(f"IDX file '{path}': {len(content)} bytes: expected a header of "
                         f"{header} bytes for {n_dims} dimensions")
    shape = struct.unpack(f">{n_dims}I", content[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected:
        raise ValueError(f"IDX file '{path}': {len(content)} bytes: expected {expected} for an "
                         f"array of shape {shape} and type {dtype.str}")
    data = np.frombuffer(content, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find_idx(directory: pathlib.Path, stem: str) -> pathlib.Path:
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                      stem.replace("-idx", ".idx") + ".gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    raise FileNotFoundError(f"path = '{directory}': expected the MNIST file '{stem}' (or "
                            f"'{stem}.gz') in it; not found")


def load_mnist(path, name: str = "mnist") -> Dataset:
    """MNIST (or a dataset in its format, e.g. Fashion-MNIST) from IDX files in ``path``.

    Parameters
    ----------
    path
        Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each possibly ``.gz``).
    name
        Label of the dataset.

    Returns
    -------
    Dataset
        Images flattened to ``(n, rows * cols)``, standardized; the standard
        train/test split of the files.
    """
    directory = pathlib.Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"path = '{path}': expected a directory holding the MNIST IDX files")
    arrays = {key: read_idx(_find_idx(directory, stem)) for key, stem in MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"MNIST {part} files in '{directory}': shapes {images.shape} and "
                             f"{labels.shape}: expected images (n, rows, cols) and labels (n,)")
        if images.shape[0] == 0:
            raise ValueError(f"MNIST {part} files in '{directory}': 0 images: expected at least "
                             "one training and one test image")
    x_train, x_test = (arrays[key].reshape(arrays[key].shape[0], -1) for key in ("x_train", "x_test"))
    x_train, x_test = standardize_pixels(x_train, x_test, 255.0)
    for key in ("y_train", "y_test"):
        labels = arrays[key]
        if labels.dtype.kind not in "iu" or (labels.size and int(labels.min()) < 0):
            bad = labels.dtype if labels.dtype.kind not in "iu" else int(labels.min())
            raise ValueError(f"MNIST labels file '{_find_idx(directory, MNIST_FILES[key])}': "
                             f"label {bad}: expected non-negative integer class labels")
    y_train = arrays["y_train"].astype(np.int64)
    y_test = arrays["y_test"].astype(np.int64)
    # The classes are 0 .. C-1, each present in the training labels: a stray label (255
    # in a 10-class set) would otherwise make a 256-class problem of empty classes.
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    missing = np.setdiff1d(np.arange(n_classes), y_train)
    if missing.size:
        raise ValueError(f"MNIST labels in '{directory}': labels up to {n_classes - 1} but "
                         f"class {int(missing[0])} has no training image ({missing.size} classes "
                         f"empty): expected labels 0 .. C-1, each present in the training set")
    return Dataset(name, x_train, y_train, x_test, y_test, n_classes)
