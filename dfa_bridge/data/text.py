"""Character-level text corpora: the embedded pydoc corpus and any UTF-8 file.

Model
-----
A corpus is a text split at a fixed character: the first ``1 - val_fraction`` of it
trains, the rest validates (deterministic, no shuffling: validation text is text the
model never saw). The vocabulary is id 0 = ``<unk>`` followed by every character seen at
least ``min_count`` times in the training part, in code-point order; any other character
(rare, or only in validation) maps to ``<unk>``.

``pydoc``: the documentation topics that ship with Python's standard library
(``pydoc_data.topics.topics``, a dict str -> str), joined in sorted-key order: about
465,000 characters, no download.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import pathlib

import numpy as np
from photon.support.arguments import check_choice, check_int, check_number

from photon import array_module

__all__ = ["UNK", "CharCorpus", "build_corpus", "load_pydoc", "load_text_file", "TEXT_DATASETS",
           "load_text_dataset", "random_windows", "validation_windows"]

UNK = "<unk>"
TEXT_DATASETS = ("pydoc", "text")


@dataclasses.dataclass
class CharCorpus:
    """A character vocabulary and the token ids of the training and validation text.

    Attributes
    ----------
    name
        ``"pydoc"`` or the file's name.
    vocabulary
        ``(UNK, c_1, c_2, ...)``: id -> character.
    train_ids, val_ids : (n,) int32 arrays
        The two parts of the text as ids.
    """

    name: str
    vocabulary: tuple[str, ...]
    train_ids: np.ndarray
    val_ids: np.ndarray

    @property
    def n_tokens(self) -> int:
        """Vocabulary size ``V`` (``<unk>`` included)."""
        return len(self.vocabulary)

    def encode(self, text: str) -> np.ndarray:
        """Ids (int32) of the characters of ``text`` (unknown ones -> 0, ``<unk>``)."""
        index = {c: i for i, c in enumerate(self.vocabulary) if i}
        return np.fromiter((index.get(c, 0) for c in text), np.int32, len(text))

    def decode(self, ids) -> str:
        """Text of ``ids`` (``<unk>`` printed as U+FFFD)."""
        return "".join("\ufffd" if i == 0 else self.vocabulary[i] for i in np.asarray(ids).tolist())

    def unigram_perplexity(self) -> float:
        """Per-character perplexity on validation of the training text's character frequencies.

        The baseline a language model must beat: add-one smoothed unigram probabilities.
        """
        counts = np.bincount(self.train_ids, minlength=self.n_tokens) + 1.0
        log_p = np.log(counts / counts.sum())
        return float(math.exp(-log_p[self.val_ids].mean()))

    def describe(self) -> dict:
        """Plain-data description for reports."""
        return {"name": self.name, "n_tokens": self.n_tokens, "train_chars": int(self.train_ids.size),
                "val_chars": int(self.val_ids.size),
                "unk_fraction_val": float(np.mean(self.val_ids == 0)),
                "unigram_perplexity": self.unigram_perplexity()}


def build_corpus(text: str, name: str = "text", val_fraction: float = 0.1,
                 min_count: int = 3) -> CharCorpus:
    """Split ``text`` (first part trains, last ``val_fraction`` validates) and build the vocabulary.

    Parameters
    ----------
    text
        The whole text.
    name
        Label for reports.
    val_fraction
        Fraction of the characters, taken at the end, for validation; in (0, 1).
    min_count
        Characters seen fewer times in the training part map to ``<unk>``; >= 1.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: {type(text).__name__}: expected a str")
    check_number("val_fraction", val_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    min_count = check_int("min_count", min_count)
    split = len(text) - int(round(len(text) * val_fraction))
    if split < 2 or len(text) - split < 2:
        raise ValueError(f"text: {len(text)} characters: expected enough for a training and a "
                         f"validation part of at least 2 characters each (val_fraction = {val_fraction})")
    counts = collections.Counter(text[:split])
    vocabulary = (UNK,) + tuple(sorted(c for c, n in counts.items() if n >= min_count))
    corpus = CharCorpus(name, vocabulary, np.zeros(0, np.int32), np.zeros(0, np.int32))
    ids = corpus.encode(text)
    corpus.train_ids, corpus.val_ids = ids[:split], ids[split:]
    return corpus


def load_pydoc(val_fraction: float = 0.1, min_count: int = 3) -> CharCorpus:
    """The standard library's pydoc topics, joined in sorted-key order (see the module)."""
    from pydoc_data.topics import topics  # noqa: PLC0415  (standard library)

    text = "".join(topics[key] for key in sorted(topics))
    return build_corpus(text, "pydoc", val_fraction, min_count)


def load_text_file(path, val_fraction: float = 0.1, min_count: int = 3) -> CharCorpus:
    """A UTF-8 text file as a corpus.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a file.
    ValueError
        The file is not UTF-8 or too short.
    """
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"path = {str(path)!r}: expected a UTF-8 text file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"path = {str(path)!r}: not UTF-8 ({error.reason} at byte "
                         f"{error.start}): expected a UTF-8 text file") from error
    return build_corpus(text, file.name, val_fraction, min_count)


def load_text_dataset(name: str, path=None, val_fraction: float = 0.1,
                      min_count: int = 3) -> CharCorpus:
    """``"pydoc"`` (embedded) or ``"text"`` (the UTF-8 file at ``path``)."""
    if check_choice("data", name, TEXT_DATASETS) == "pydoc":
        return load_pydoc(val_fraction, min_count)
    if path is None:
        raise ValueError("path = None: expected the path of a UTF-8 text file for data = 'text'")
    return load_text_file(path, val_fraction, min_count)


def random_windows(ids, batch_size: int, context: int, rng: np.random.Generator):
    """A batch of ``batch_size`` windows at uniform random offsets of ``ids``.

    Returns
    -------
    (inputs, targets) : (batch_size, context) int arrays, on the backend of ``ids``
        ``targets[b, t] = ids[s_b + t + 1]``, the next character of ``inputs[b, t]``.
    """
    if ids.shape[0] <= context + 1:
        raise ValueError(f"context = {context}: expected fewer than the {ids.shape[0] - 1} "
                         "characters of the text")
    xp = array_module(ids)
    starts = rng.integers(0, ids.shape[0] - context - 1, batch_size)
    index = xp.asarray(starts[:, None] + np.arange(context + 1)[None, :])
    windows = ids[index]
    return windows[:, :-1], windows[:, 1:]


def validation_windows(ids, context: int, max_chars: int | None = None):
    """Consecutive non-overlapping windows covering ``ids`` (at most ``max_chars`` targets).

    Returns
    -------
    (inputs, targets) : (n_windows, context) int arrays
        Every character after the first is a target exactly once (the tail shorter than
        a window is dropped).
    """
    usable = ids.shape[0] - 1 if max_chars is None else min(ids.shape[0] - 1, int(max_chars))
    n_windows = usable // context
    if n_windows < 1:
        raise ValueError(f"context = {context}: expected at most the {usable} characters "
                         "of the validation text")
    span = n_windows * context
    return (ids[:span].reshape(n_windows, context), ids[1:span + 1].reshape(n_windows, context))
