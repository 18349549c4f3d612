"""The toolkit's commands: one module per command, each with ``main(argv=None) -> int``.

``photon-dfa NAME [arguments]`` (:mod:`studies.cli`, installed by ``pip install -e .``)
and ``python scripts/NAME.py [arguments]`` (a thin caller, for a checkout that is not
installed) run the same ``main``; the command's name is the module's with ``-`` for
``_`` (``noise_sweep`` is ``photon-dfa noise-sweep``). A module's ``main`` parses its own
arguments with :mod:`argparse` and returns the exit status; the callers end a user's
error in one line with :func:`photon.support.cli.run_main`. The first line of a module's
docstring is the command's one-line summary in ``photon-dfa --help``. A module whose name
starts with ``_`` is no command.
"""

__all__: list[str] = []
