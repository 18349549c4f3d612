"""Helpers every layer uses that are not physics: array backends, progress bars, and the
validating schema of configurations.

:mod:`~photon.support.arrays`    the array module of the data (NumPy or CuPy), transfers, noise streams
:mod:`~photon.support.progress`  progress bars on stderr for long work
:mod:`~photon.support.schema`    typed, range-checked fields of frozen dataclass configurations
:mod:`~photon.support.jsonio`    strict JSON for results (no NaN or Infinity tokens)
:mod:`~photon.support.stats`     the mean over seeds and its 95 % Student-t interval
:mod:`~photon.support.cli`       how every command-line front ends on a user's error
:mod:`~photon.support.arguments` checks of counts, seeds and physical numbers given as arguments
"""
