"""The floors of the toolkit: imports point down, and only the studies floor draws or writes pages.

``photon <- devices <- calibration, dfa_bridge <- studies <- scripts``: a module imports
only from its own floor or below. Matplotlib is imported on the studies floor and in the
scripts only; the library floors return numbers.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: each package and the packages it must not import
FORBIDDEN = {
    "photon": {"devices", "calibration", "dfa_bridge", "studies", "scripts"},
    "devices": {"calibration", "dfa_bridge", "studies", "scripts"},
    "calibration": {"dfa_bridge", "studies", "scripts"},
    "dfa_bridge": {"calibration", "studies", "scripts"},
    "studies": {"scripts"},
}
LIBRARY_FLOORS = ("photon", "devices", "calibration", "dfa_bridge")


def imported_roots(path: pathlib.Path) -> set[str]:
    """Top-level names of every absolute import in a file (function-level ones included)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down_the_floors(package):
    upward = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN[package])
              for p in modules(package)}
    assert {k: v for k, v in upward.items() if v} == {}


@pytest.mark.parametrize("package", LIBRARY_FLOORS)
def test_library_floors_draw_nothing(package):
    drawing = [str(p.relative_to(ROOT)) for p in modules(package)
               if "matplotlib" in imported_roots(p)]
    assert drawing == []


def test_the_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from studies.sweep import run_sweep\n    import matplotlib\n")
    assert imported_roots(bad) == {"studies", "matplotlib"}
