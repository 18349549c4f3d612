"""Generated tabular tasks on which hidden-layer learning carries the result.

On scikit-learn's digits the *shallow* baseline (random hidden layers, only the last layer
trained) is within half a point of DFA: nearly any feedback gives the same accuracy, so a
study of feedback quality learns nothing there. :func:`teacher_task` generates a task
where the hidden layers must learn: the label is the class of a small random *teacher*
network that reads a few hidden directions of a high-dimensional Gaussian input.

Model
-----
Inputs ``x ~ N(0, I_d)`` (``d = n_features``). A teacher with ``k`` hidden units reads
``k`` orthonormal directions ``U`` (``k x d``):

    ``h = sign(U x)``   (``k`` bits: which side of ``k`` hyperplanes through the origin)
    ``label = argmax_c (V h)_c``  with ``V`` a fixed ``(C, k)`` Gaussian matrix,

the classes being re-balanced by adding a per-class offset to ``V h`` found on a large
draw (so that each class holds about ``1/C`` of the data). A linear model sees only a
projection of this piecewise-constant function of ``k`` directions hidden among ``d``;
random hidden features (the shallow baseline) spread their units over all ``d``
directions and resolve the ``k`` relevant hyperplanes poorly; an MLP trained by
backpropagation or DFA turns its first layer onto ``U``.

With the defaults (32 inputs, 4 teacher units, 4 classes, 3,000 training and 2,000 test
samples) the noise sweep's ``deep-mlp`` task (three hidden layers of 256 tanh units,
10 epochs, Adam 1e-3) gives, over 5 seeds (docs/noise/index.md, mean and 95 %
interval): backpropagation 91.2 +- 1.0 %, DFA with ideal feedback 88.0 +- 1.3 %, the
shallow baseline 71.1 +- 0.7 %: hidden-layer learning is worth 17 to 20 points, and
logistic regression on the raw input stays below 75 %.
"""

from __future__ import annotations

import numpy as np

from photon.support.arguments import check_int

from .tabular import Dataset

__all__ = ["teacher_task", "TEACHER_DEFAULTS"]

#: Sizes of the ``teacher`` dataset of :func:`dfa_bridge.data.load_dataset`.
TEACHER_DEFAULTS = {"n_features": 32, "n_hidden": 4, "n_classes": 4, "n_train": 3000,
                    "n_test": 2000}


def teacher_task(n_features: int = 32, n_hidden: int = 4, n_classes: int = 4,
                 n_train: int = 3000, n_test: int = 2000, seed: int = 0) -> Dataset:
    """A classification task labelled by a random sign-unit teacher on hidden directions.

    Parameters
    ----------
    n_features
        Input width ``d`` (>= ``n_hidden``).
    n_hidden
        Teacher units ``k``: hidden directions the label depends on.
    n_classes
        Classes ``C`` (>= 2).
    n_train, n_test
        Samples of each part (independent draws).
    seed
        Seed of the teacher and of the samples (independent streams): equal seeds give
        equal datasets.

    Returns
    -------
    Dataset
        Named ``"teacher"``; float32 standard Gaussian features, balanced int64 labels.
    """
    d = check_int("n_features", n_features)
    k = check_int("n_hidden", n_hidden)
    if k > d:
        raise ValueError(f"n_hidden = {n_hidden!r}: expected at most n_features = {d} "
                         "(orthonormal directions)")
    c = check_int("n_classes", n_classes, low=2)
    n_train = check_int("n_train", n_train)
    n_test = check_int("n_test", n_test)
    teacher_seed, balance_seed, sample_seed = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(teacher_seed)
    directions = np.linalg.qr(rng.standard_normal((d, k)))[0].T          # (k, d) orthonormal
    readout = rng.standard_normal((c, k))

    def scores(x):
        return np.sign(x @ directions.T) @ readout.T                     # (n, C)

    # Per-class offsets that balance the classes, found by a few passes of a
    # proportional correction on a large draw.
    probe = np.random.default_rng(balance_seed).standard_normal((20_000, d))
    raw = scores(probe)
    offset = np.zeros(c)
    for _ in range(200):
        share = np.bincount(np.argmax(raw + offset, axis=1), minlength=c) / raw.shape[0]
        if np.all(np.abs(share - 1.0 / c) < 0.01):
            break
        offset -= 0.5 * (share - 1.0 / c) * np.abs(readout).sum(axis=1).mean()
    sample_rng = np.random.default_rng(sample_seed)
    x = sample_rng.standard_normal((n_train + n_test, d))
    y = np.argmax(scores(x) + offset, axis=1).astype(np.int64)
    x = x.astype(np.float32)
    return Dataset("teacher", x[:n_train], y[:n_train], x[n_train:], y[n_train:], c)
