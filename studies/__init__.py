"""The studies floor: every study, report, benchmark and figure of the toolkit.

Imports point down only: ``photon <- devices <- calibration, dfa_bridge <- studies <-
scripts``. Nothing below imports this package, and only this floor (and the scripts)
draws figures with Matplotlib or writes Markdown pages. Import what you need from its
modules (``from studies.sweep import run_sweep``):

=========================================  ==================================================
:mod:`~studies.acceptance`                 several methods on one task, same seeds, with goals
:mod:`~studies.sweep`                      DFA through virtual OPUs whose noise and
                                           quantization vary, over seeds (processes or Dask)
:mod:`~studies.noise_budget`               the feedback's fidelity and noise budget
:mod:`~studies.benchmark`                  BP against DFA step time
:mod:`~studies.step_cost`                  the DFA training-step cost model, OPU against GPU,
                                           under three schedules
:mod:`~studies.step_inverse`               the OPU that would tie backprop, per schedule
:mod:`~studies.step_validation`            the step model against steps measured here
:mod:`~studies.step_cost_page`             the step-cost study as one run and one page
:mod:`~studies.dfa_variants`               accuracy cost of stale feedback and micro DFA
:mod:`~studies.throughput`                 projections per second: OPU, dense, structured
:mod:`~studies.timing`                     interleaved repeats, medians and their spread
:mod:`~studies.gpu_model`                  roofline models of named GPUs (labelled models)
:mod:`~studies.calibration_quality`        calibration quality against fresh frames
:mod:`~studies.physics_pages`              the speckle histogram and the TM-precision table
:mod:`~studies.plots`                      learning and alignment curves as PNG
:mod:`~studies.commands`                   one module per command, ``main(argv) -> int``
:mod:`~studies.cli`                        ``photon-dfa COMMAND``: the console command
=========================================  ==================================================
"""

__all__: list[str] = []
