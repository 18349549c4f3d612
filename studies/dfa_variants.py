"""What the fast schedules cost in accuracy: stale feedback, and micro against macro DFA.

The overlapped schedule (:mod:`studies.step_cost`) hides the OPU's time behind the next
step, so the feedback a layer's update uses is one step stale: the update of step ``t``
lands after step ``t + 1``'s forward pass (:class:`~dfa_bridge.training.trainer.Trainer`'s
``feedback_delay``). Micro DFA feeds every layer inside a Transformer block instead of
the block output alone (feedback modes ``micro-*``): a wider projection and a shorter
local backward. Both are measured, not assumed:

* :func:`stale_feedback_study`: DFA (ideal Gaussian feedback) with fresh and with
  one-step-stale feedback, the same seeds for both (paired: the same weights, batches
  and feedback matrix), on Cora's GCN and on the digits MLP;
* :func:`micro_dfa_study`: macro against micro DFA on the character Transformer,
  paired likewise.

Each comparison is a decision (:func:`paired_decision`, the rule of the noise study): the
paired differences' mean and 95 % interval (Student t), and tests against a stated
margin: two one-sided t-tests at 5 % (the 90 % interval inside ``+-margin``):
``equivalent``; a one-sided test that puts the difference beyond the margin: ``worse``
or ``better``; else ``undecided`` (the seeds cannot tell).
"""

from __future__ import annotations

import time

import numpy as np

from photon.support.arguments import check_int
from photon.support.progress import Progress
from photon.support.stats import describe, mean_interval, paired_margin_tests

__all__ = ["STALE_TASKS", "paired_decision", "stale_feedback_study", "micro_dfa_study",
           "variants_markdown"]

#: The tasks of the stale-feedback study: (model, data, budget or None for the default).
STALE_TASKS = (("gcn", "cora", None), ("mlp", "digits", None))


def paired_decision(differences, margin: float, confidence: float = 0.95) -> dict:
    """Decide a paired difference (variant - reference, one per seed) against ``+-margin``.

    The house's decision (:func:`photon.support.stats.paired_margin_tests`, the rule of
    the noise study): ``"equivalent"`` when both one-sided t tests of TOST reject a
    difference beyond the margin at ``1 - confidence``; ``"worse"`` (``"better"``) when a
    one-sided test puts the difference beyond ``-margin`` (``+margin``); else
    ``"undecided"``.

    Returns
    -------
    dict
        ``mean``, ``ci95`` (half-width of the ``confidence`` interval of the mean),
        ``ci90`` (half-width of the ``1 - 2 (1 - confidence)`` interval TOST reads),
        ``n``, ``margin``, ``p_equivalence`` (TOST's p-value), ``p_worse`` and
        ``p_better``, ``decision`` and the ``values``.
    """
    values = np.asarray(differences, dtype=float).ravel()
    tests = paired_margin_tests(values, margin, alpha=1.0 - confidence)
    _, half = mean_interval(values, confidence)
    low, high = tests["interval"]
    return {"mean": tests["mean"], "ci95": half, "ci90": (high - low) / 2.0, "n": tests["n"],
            "margin": tests["margin"], "p_equivalence": tests["p_tost"],
            "p_worse": tests["p_worse"], "p_better": tests["p_better"],
            "decision": tests["decision"], "values": values.tolist()}


def _arm_runs(run, seeds, arms: dict, label: str, progress) -> tuple[dict, dict]:
    """Run each arm on every seed (arms interleaved per seed); return scores and results."""
    scores = {arm: [] for arm in arms}
    seconds = {arm: 0.0 for arm in arms}
    with Progress(len(seeds) * len(arms), label, enabled=progress, unit="run") as bar:
        for seed in seeds:
            for arm, options in arms.items():
                score, spent = run(seed, **options)
                scores[arm].append(score)
                seconds[arm] += spent
                bar.update()
    return scores, seconds


def stale_feedback_study(seeds=range(5), tasks=STALE_TASKS, margin_points: float = 1.0,
                         feedback_delay: int = 1, progress: bool | None = None) -> dict:
    """Test accuracy of DFA with fresh and with ``feedback_delay``-step-stale feedback.

    Parameters
    ----------
    seeds
        Training seeds, the same for both arms (paired).
    tasks
        ``(model, data, budget)`` (budget: epochs; None for the default of
         the family's record,
        :data:`dfa_bridge.training.families.FAMILIES`).
    margin_points
        Equivalence margin in accuracy points.
    feedback_delay
        Steps of staleness (1: the overlapped schedule).
    progress
        Progress bars on stderr (None: for four runs or more).

    Returns
    -------
    dict
        Per task (``"gcn/cora"`` ...): ``fresh`` and ``stale`` accuracies (mean, std,
        95 % interval, values), the paired ``difference`` in points (stale - fresh) with its
        :func:`paired_decision`, ``epochs``, ``seconds`` per arm; and the settings.
    """
    from dfa_bridge.training.experiment import run_experiment  # noqa: PLC0415

    seeds = [check_int("seed", s, low=0) for s in seeds]
    delay = check_int("feedback_delay", feedback_delay)
    result = {"seeds": seeds, "margin_points": margin_points, "feedback_delay": delay,
              "feedback": "ideal (Gaussian)", "tasks": {}}
    for model, data, epochs in tasks:
        def run(seed, feedback_delay, model=model, data=data, epochs=epochs):
            start = time.perf_counter()
            outcome, _ = run_experiment(model, data, "dfa", "ideal", epochs=epochs, seed=seed,
                                        feedback_delay=feedback_delay, progress=False)
            return 100.0 * outcome["test_accuracy"], time.perf_counter() - start

        scores, seconds = _arm_runs(run, seeds, {"fresh": {"feedback_delay": 0},
                                                 "stale": {"feedback_delay": delay}},
                                    f"stale feedback: {model} on {data}", progress)
        differences = np.subtract(scores["stale"], scores["fresh"])
        result["tasks"][f"{model}/{data}"] = {
            "model": model, "data": data, "epochs": epochs, "metric": "test accuracy (%)",
            "fresh": describe(scores["fresh"]), "stale": describe(scores["stale"]),
            "difference": paired_decision(differences, margin_points), "seconds": seconds}
    return result


def micro_dfa_study(seeds=range(5), steps: int = 600, margin_nats: float = 0.02,
                    feedback_mode: str = "shared", max_eval_chars: int | None = 20_000,
                    progress: bool | None = None) -> dict:
    """Validation loss of the character Transformer with macro and with micro DFA.

    Parameters
    ----------
    seeds
        Training seeds, the same for both arms.
    steps
        Training steps of each run.
    margin_nats
        Equivalence margin on the validation loss (nats per character; 0.02 is a 2 %
        perplexity ratio).
    feedback_mode
        ``"shared"`` or ``"sliced"``: macro is that mode, micro its ``micro-`` twin.
    max_eval_chars
        Validation characters scored at each evaluation.
    progress
        Progress bars on stderr.

    Returns
    -------
    dict
        ``macro`` and ``micro`` validation losses (nats per character) and perplexities,
        the paired ``difference`` (micro - macro; positive: micro worse) with its
        :func:`paired_decision`, the settings and ``seconds`` per arm.
    """
    from dfa_bridge.training.experiment import run_experiment  # noqa: PLC0415

    seeds = [check_int("seed", s, low=0) for s in seeds]
    steps = check_int("steps", steps)
    modes = {"macro": feedback_mode, "micro": f"micro-{feedback_mode}"}

    def run(seed, mode):
        start = time.perf_counter()
        outcome, _ = run_experiment("transformer", None, "dfa", "ideal", steps=steps, seed=seed,
                                    feedback_mode=mode, max_eval_chars=max_eval_chars,
                                    evaluations=1, progress=False)
        return outcome["val_loss"], time.perf_counter() - start

    losses, seconds = _arm_runs(run, seeds, {arm: {"mode": mode} for arm, mode in modes.items()},
                                "micro against macro DFA: char Transformer", progress)
    # a better micro run has a LOWER loss: decide on (macro - micro), "worse" means micro worse
    decision = paired_decision(np.subtract(losses["macro"], losses["micro"]), margin_nats)
    return {"seeds": seeds, "steps": steps, "margin_nats": margin_nats, "modes": modes,
            "max_eval_chars": max_eval_chars, "metric": "validation loss (nats per character)",
            "macro": describe(losses["macro"]), "micro": describe(losses["micro"]),
            "macro_perplexity": float(np.exp(np.mean(losses["macro"]))),
            "micro_perplexity": float(np.exp(np.mean(losses["micro"]))),
            "difference": decision, "seconds": seconds}


def _interval(entry: dict, digits: int = 2) -> str:
    half = entry.get("ci95")
    return f"{entry['mean']:.{digits}f}" + ("" if half is None else f" ± {half:.{digits}f}")


def variants_markdown(stale: dict | None, micro: dict | None) -> str:
    """The two studies as Markdown (mean and 95 % interval over seeds, the decision)."""
    lines = []
    if stale is not None:
        lines += [f"One-step-stale feedback (the overlapped schedule: each update of the "
                  f"feedback-driven layers applied {stale['feedback_delay']} step late), DFA with "
                  f"ideal Gaussian feedback, seeds {stale['seeds']} (paired), equivalence margin "
                  f"±{stale['margin_points']:g} accuracy points (two one-sided t-tests at 5 %):",
                  "", "| task | fresh (% test) | stale (% test) | stale - fresh (points) | "
                  "90 % interval | decision |", "|---|---|---|---|---|---|"]
        for name, task in stale["tasks"].items():
            d = task["difference"]
            lines.append(f"| {name} | {_interval(task['fresh'])} | {_interval(task['stale'])} | "
                         f"{d['mean']:+.2f} ± {d['ci95']:.2f} | [{d['mean'] - d['ci90']:+.2f}, "
                         f"{d['mean'] + d['ci90']:+.2f}] | **{d['decision']}** |")
        lines.append("")
    if micro is not None:
        d = micro["difference"]
        lines += [f"Micro against macro DFA on the character Transformer ({micro['steps']} steps, "
                  f"ideal feedback, modes {micro['modes']['macro']} / {micro['modes']['micro']}, "
                  f"seeds {micro['seeds']}, paired), validation loss in nats per character, "
                  f"equivalence margin ±{micro['margin_nats']:g} nats:", "",
                  "| macro | micro | macro - micro (nats; < 0: micro worse) | 90 % interval | "
                  "decision (for micro) |", "|---|---|---|---|---|",
                  f"| {_interval(micro['macro'], 3)} (ppl {micro['macro_perplexity']:.2f}) | "
                  f"{_interval(micro['micro'], 3)} (ppl {micro['micro_perplexity']:.2f}) | "
                  f"{d['mean']:+.3f} ± {d['ci95']:.3f} | [{d['mean'] - d['ci90']:+.3f}, "
                  f"{d['mean'] + d['ci90']:+.3f}] | **{d['decision']}** |", ""]
    return "\n".join(lines)
