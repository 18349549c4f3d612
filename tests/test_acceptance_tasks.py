"""Acceptance studies on any task: a user's own data set object, gaps decided over seeds."""

import pytest

from dfa_bridge.data import contextual_sbm
from studies.acceptance import STUDIES, run_study_seeds, study_markdown, task_study


def test_a_study_of_a_users_graph_object_decides_its_gaps():
    graph = contextual_sbm(n_nodes=200, n_features=40, n_val=40, n_test=60, seed=5)
    study = task_study("gcn", graph)
    assert set(study["runs"]) == {"bp", "dfa-ideal", "dfa-device", "shallow"}
    result, _ = run_study_seeds(study, [0, 1], epochs=2, hidden=(16,))
    assert result["study"] == "gcn-csbm" and result["seeds"] == [0, 1]
    gap = result["gaps"]["dfa-device - dfa-ideal"]
    assert gap["decision"]["decision"] in ("equivalent", "worse", "better", "undecided")
    low, high = gap["decision"]["interval"]
    assert low <= gap["mean"] <= high
    page = study_markdown(result, "python scripts/dfa_study.py --model gcn --data csbm")
    assert "TOST" in page and "| goal |" not in page  # a task of one's own has no goals


def test_the_cora_study_checks_the_default_against_ideal_feedback():
    cora = STUDIES["cora"]
    assert cora["runs"]["dfa-lab-bench"]["feedback"] == "lab-bench"
    assert "encoder" not in cora["runs"]["dfa-lab-bench"]           # the default encoding
    assert cora["runs"]["dfa-lab-bench-ternary"]["encoder"] == "ternary"
    assert "dfa (lab-bench, default encoding) within 1.5 points of dfa (ideal)" in cora["goals"]
    with pytest.raises(ValueError, match="model = 'transformer': expected a classifier family, 'mlp' or 'gcn'"):
        task_study("transformer", "pydoc")
