"""One record per model family: the registry is what run_experiment accepts and uses, a new
family is one record, and no module outside the record tests a family's name."""

import ast
import dataclasses
import pathlib

import pytest

from dfa_bridge.nn.models import MLP
from dfa_bridge.training import families
from dfa_bridge.training.experiment import resolve_settings, run_experiment
from dfa_bridge.training.families import FAMILIES, FamilyRun, ModelFamily, family, family_names
from dfa_bridge.training.trainer import TabularTask

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("photon", "devices", "calibration", "dfa_bridge", "studies", "scripts")
RECORD_FILE = ROOT / "dfa_bridge" / "training" / "families.py"


def test_registry_is_what_run_experiment_accepts():
    assert tuple(FAMILIES) == ("mlp", "gcn", "transformer")
    for name, record in FAMILIES.items():
        assert record.name == name and family(name) is record
    with pytest.raises(ValueError, match=r"model = 'cnn': expected one of 'mlp', 'gcn', "
                                         r"'transformer'"):
        run_experiment("cnn", progress=False)
    with pytest.raises(ValueError, match="model = 'cnn': expected one of"):
        family("cnn")
    assert family_names(higher_is_better=True) == ("mlp", "gcn")
    assert family_names(is_language=True) == ("transformer",)


#: A tiny run of each family: its data and budget; every other setting is the record's.
TINY = {"mlp": {"data": "digits", "epochs": 1, "max_train": 64},
        "gcn": {"data": "csbm", "epochs": 1},
        "transformer": {"data": "pydoc", "steps": 1, "evaluations": 1, "max_eval_chars": 128}}


@pytest.mark.parametrize("name", tuple(FAMILIES))
def test_record_defaults_are_what_a_run_uses(name):
    record = family(name)
    assert set(TINY) == set(FAMILIES)
    result, history = run_experiment(name, method="bp", progress=False, **TINY[name])
    budget = {record.budget: TINY[name][record.budget]}
    expected = {k: list(v) if isinstance(v, tuple) else v
                for k, v in {**record.defaults, **budget}.items()}
    assert result["settings"] == expected == resolve_settings(name, **budget)
    assert result[record.budget] == budget[record.budget]
    assert record.metric in result and set(record.scores) <= set(result)
    assert set(result["curves"]) == set(record.curves)
    assert ("data_seed" in result) == (not record.is_language)


def _linear_build(record, data, *, data_path, data_seed, max_train, settings, seeds, **_):
    """A new family's network and task code: a softmax regression on tabular data."""
    dataset = families.classifier_dataset(record, data, data_path, data_seed, max_train)
    network = MLP(dataset.n_features, dataset.n_classes, tuple(settings["hidden"]),
                  seed=seeds["model"])
    return FamilyRun(network, lambda xp: TabularTask(dataset.to(xp), settings["epochs"],
                                                     settings["batch_size"], seed=seeds["order"]),
                     dataset.describe())


def test_a_new_family_is_one_record(monkeypatch):
    wide = ModelFamily(
        name="wide", description="one wide hidden layer", budget="epochs",
        defaults={"hidden": (512,), "optimizer": "sgd", "lr": 0.05, "weight_decay": 0.0,
                  "batch_size": 16, "epochs": 3},
        metric="test_accuracy", higher_is_better=True, default_data="digits",
        encoder=("bitplanes", 2), fidelity_errors="classification", build=_linear_build,
        feedback_width=families.hidden_width, rows_per_fit=families.batch_rows)
    monkeypatch.setitem(FAMILIES, "wide", wide)
    result, history = run_experiment("wide", method="dfa", feedback="lab-bench", epochs=1,
                                     max_train=96, progress=False, monitor=False)
    assert result["model"] == "wide" and result["epochs"] == 1
    assert result["settings"] == {"hidden": [512], "optimizer": "sgd", "lr": 0.05,
                                  "weight_decay": 0.0, "batch_size": 16, "epochs": 1}
    assert result["feedback"]["encoder"].startswith("BitPlaneEncoder(n_bits=2,")
    assert 0.0 <= result["test_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="steps = 2: expected None for model 'wide'"):
        run_experiment("wide", steps=2, progress=False)
    with pytest.raises(ValueError, match=r"n_sample = 5: expected 0 for model 'wide' "
                                         r"\(only 'transformer' sample text\)"):
        run_experiment("wide", n_sample=5, progress=False)


def test_record_refuses_a_budget_it_has_no_default_for():
    record = family("mlp")
    with pytest.raises(ValueError, match="budget = 'minutes': expected one of 'epochs', 'steps'"):
        dataclasses.replace(record, budget="minutes")
    with pytest.raises(ValueError, match="expected the budget 'steps' among them"):
        dataclasses.replace(record, budget="steps")


# ---------------------------------------------------------------------------- source scan
def _literal_names(node) -> set:
    """The family names a compared operand holds: a string, or a tuple/list/set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & set(FAMILIES)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_literal_names(item) for item in node.elts)) if node.elts else set()
    return set()


def name_tests(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, text)`` of every comparison of a value with a family's name (``==``, ``!=``,
    ``in``, ``not in``, a match case) in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot))
                   for op in node.ops) and any(_literal_names(o) for o in operands):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.MatchValue) and _literal_names(node.value):
            found.append((node.lineno, ast.unparse(node.value)))
    return found


@pytest.mark.parametrize("fault", ['if model == "transformer":\n    pass\n',
                                   'x = "gcn" != model\n',
                                   'ok = model in ("mlp", "gcn")\n',
                                   'match model:\n    case "mlp":\n        pass\n'])
def test_the_scan_finds_a_name_test(fault):
    assert name_tests("model = 'a'\n" + fault)
    assert not name_tests('run("mlp")\nx = {"gcn": 1}["gcn"]\n"""model == "mlp" in a docstring"""\n')


def test_no_module_outside_the_record_tests_a_family_name():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == RECORD_FILE:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{line}: {text}"
                          for line, text in name_tests(path.read_text(encoding="utf-8"), str(path))]
    assert not offenders, "family names tested outside the record:\n" + "\n".join(offenders)
