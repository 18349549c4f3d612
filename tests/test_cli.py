"""``photon-dfa``: one console command, a subcommand per script, dispatched in process.

The installed entry point is ``studies.cli:main`` (``[project.scripts]``); these tests
call that function, so they need no ``pip install``.
"""

import ast
import importlib
import pathlib
import sys

import pytest

from studies import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def scripts_without_command(scripts_dir: pathlib.Path, commands: list[str]) -> list[str]:
    """Python scripts in ``scripts_dir`` that no subcommand runs (by the name rule - for _)."""
    return sorted(path.name for path in scripts_dir.glob("*.py")
                  if path.stem.replace("_", "-") not in commands)


def test_every_script_has_its_subcommand_and_every_subcommand_its_script():
    commands = cli.command_names()
    assert scripts_without_command(ROOT / "scripts", commands) == []
    scripts = {path.stem.replace("_", "-") for path in (ROOT / "scripts").glob("*.py")}
    assert set(commands) == scripts
    assert {"train", "report", "noise-sweep", "dfa-study", "calibrate"} <= set(commands)


def test_the_script_check_can_fail(tmp_path):
    for name in ("train.py", "new_study.py", "gpu_check.sh"):
        (tmp_path / name).write_text("")
    assert scripts_without_command(tmp_path, cli.command_names()) == ["new_study.py"]


@pytest.mark.parametrize("script", sorted((ROOT / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_each_script_is_a_thin_caller_of_its_command(script):
    tree = ast.parse(script.read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert f"studies.commands.{script.stem}" in imported
    assert not [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    module = importlib.import_module(f"studies.commands.{script.stem}")
    assert callable(module.main) and "main" in module.__all__
    assert cli.summary(script.stem.replace("_", "-")) == ast.get_docstring(tree).splitlines()[0]


def test_help_lists_every_subcommand_with_one_line(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: photon-dfa COMMAND")
    for name in cli.command_names():
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert cli.summary(name) and line.endswith(cli.summary(name))
    assert "  noise-sweep  " in out and "  train  " in out


def test_a_subcommand_runs_its_module_under_its_own_name(capsys):
    argv0 = sys.argv[0]
    with pytest.raises(SystemExit) as stop:  # argparse's --help ends with status 0
        cli.main(["train", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: photon-dfa train [-h]") and "--feedback" in out
    assert sys.argv[0] == argv0  # the program name is put back


def test_a_user_error_in_a_subcommand_is_one_line_and_status_2(capsys):
    assert cli.main(["calibrate", "--device", "no-such-device"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("photon-dfa calibrate: error: device = "
                                               "'no-such-device'")
    with pytest.raises(SystemExit) as stop:  # argparse's own refusal keeps its status 2
        cli.main(["train", "--model", "cnn"])
    assert stop.value.code == 2
    assert "photon-dfa train: error: argument --model" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["warp-drive", "--fast"], "photon-dfa: error: unknown command 'warp-drive'; expected one of: "),
    (["noise_sweep"], "photon-dfa: error: unknown command 'noise_sweep'; expected one of: "),
    ([], "photon-dfa: error: expected a command, one of: "),
])
def test_an_unknown_or_missing_subcommand_is_one_line_and_status_2(capsys, argv, expected):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert captured.out == "" and len(err) == 1 and err[0].startswith(expected)
    assert ", ".join(cli.command_names()) in err[0]


def test_pyproject_installs_the_one_command():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"photon-dfa": "studies.cli:main"}
    module, function = project["scripts"]["photon-dfa"].split(":")
    assert getattr(importlib.import_module(module), function) is cli.main


# ---------------------------------------------------------------------------- every number checked
def _parser_of(command: str, monkeypatch):
    """The parser a command builds (caught as it parses ``--help``)."""
    from studies.commands import _parser

    caught = []
    original = _parser.CommandParser.parse_known_args

    def catch(self, args=None, namespace=None):
        caught.append(self)
        return original(self, args, namespace)

    monkeypatch.setattr(_parser.CommandParser, "parse_known_args", catch)
    module = importlib.import_module(f"studies.commands.{command.replace('-', '_')}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    monkeypatch.undo()
    return caught[0]


@pytest.mark.parametrize("command", cli.command_names())
def test_every_numeric_argument_states_its_range_and_refuses_in_one_line(command, monkeypatch,
                                                                        capsys):
    from studies.commands._parser import CommandParser

    parser = _parser_of(command, monkeypatch)
    assert isinstance(parser, CommandParser)    # no bare int or float (it would have raised)
    capsys.readouterr()
    module = importlib.import_module(f"studies.commands.{command.replace('-', '_')}")
    numeric = [a for a in parser._actions if a.option_strings and callable(a.type)
               and getattr(a.type, "__name__", "") not in ("str", "widths", "_widths",
                                                            "_override", "_seconds")]
    for action in numeric:
        option = action.option_strings[-1]
        for bad in ("nan", "-1e9"):
            with pytest.raises(SystemExit) as done:
                module.main([option, bad])
            err = capsys.readouterr().err
            assert done.value.code == 2, (option, bad)
            assert err.count("\n") == 1 and option in err and "expected" in err, (option, err)


def test_a_bare_int_is_refused_when_the_parser_parses():
    from studies.commands._parser import CommandParser, int_in

    parser = CommandParser(prog="demo")
    parser.add_argument("--count", type=int)
    with pytest.raises(TypeError, match=r"demo: arguments --count declared with a bare int"):
        parser.parse_args(["--help"])
    assert int_in(2, 5)("3") == 3
    with pytest.raises(Exception, match=r"'x': expected an integer in \[2, 5\]"):
        int_in(2, 5)("x")
