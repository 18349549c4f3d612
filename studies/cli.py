"""``photon-dfa``: the toolkit's one console command, with a subcommand per study.

``photon-dfa NAME [arguments]`` runs ``main(arguments)`` of the module
``studies.commands.NAME`` (``-`` in a name stands for ``_``: ``photon-dfa noise-sweep``
runs :mod:`studies.commands.noise_sweep`), which is what ``python scripts/NAME.py
[arguments]`` runs from a checkout. The commands are the modules of
:mod:`studies.commands`, found on disk: a new module there is a new command. Only the
chosen command's module is imported, so ``photon-dfa --help`` lists every command (the
first line of each module's docstring, read without importing it) in a fraction of a
second.

Exit statuses are the command's own: 0 on success, 2 with one line on stderr for a bad
argument (:func:`photon.support.cli.run_main`), and 2 with one line for an unknown or
missing command.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import pkgutil
import sys

from photon.support.cli import run_main

__all__ = ["PROG", "command_names", "summary", "usage", "main"]

#: The console command's name (``[project.scripts]`` in ``pyproject.toml``).
PROG = "photon-dfa"
#: The package whose modules are the commands.
COMMANDS_PACKAGE = "studies.commands"


def _module_name(command: str) -> str:
    return f"{COMMANDS_PACKAGE}.{command.replace('-', '_')}"


def command_names() -> list[str]:
    """The subcommands, sorted: one per public module of :mod:`studies.commands`."""
    package = importlib.import_module(COMMANDS_PACKAGE)
    return sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(package.__path__)
                  if not info.name.startswith("_") and not info.ispkg)


def summary(command: str) -> str:
    """The first line of the command module's docstring, read without importing it."""
    spec = importlib.util.find_spec(_module_name(command))
    with open(spec.origin, encoding="utf-8") as source:
        docstring = ast.get_docstring(ast.parse(source.read(), spec.origin)) or ""
    return docstring.strip().splitlines()[0] if docstring.strip() else ""


def usage() -> str:
    """The text of ``photon-dfa --help``: the usage and one line per subcommand."""
    names = command_names()
    width = max(len(name) for name in names)
    lines = [f"usage: {PROG} COMMAND [ARGUMENTS]",
             "",
             "Physics-level OPU model, calibration and DFA training through it.",
             f"`{PROG} COMMAND --help` describes a command's arguments; from a checkout,",
             "`python scripts/COMMAND.py` (with _ for -) runs the same command.",
             "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary(name)}" for name in names]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _program_name(prog: str):
    """Name the program ``prog`` in argparse's usage lines while a command runs."""
    saved = sys.argv[0] if sys.argv else None
    if sys.argv:
        sys.argv[0] = prog
    else:
        sys.argv.append(prog)
    try:
        yield
    finally:
        if saved is None:
            sys.argv.pop(0)
        else:
            sys.argv[0] = saved


def main(argv: list[str] | None = None) -> int:
    """Run ``photon-dfa COMMAND [ARGUMENTS]``; returns the exit status.

    ``-h`` or ``--help`` first prints :func:`usage` (status 0); no command or an
    unknown one prints one line naming it and the choices on stderr (status 2).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    names = command_names()
    if argv and argv[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0
    if not argv:
        print(f"{PROG}: error: expected a command, one of: {', '.join(names)} "
              f"(`{PROG} --help` describes them)", file=sys.stderr)
        return 2
    command, arguments = argv[0], argv[1:]
    if command not in names:
        print(f"{PROG}: error: unknown command {command!r}; expected one of: "
              f"{', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(_module_name(command))
    prog = f"{PROG} {command}"
    with _program_name(prog):
        return run_main(module.main, arguments, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
