"""lightonml's ``projections``: ``OPUMap`` for scikit-learn (:mod:`.sklearn`) and PyTorch
(:mod:`.torch`, imported only when asked: it needs torch)."""

__all__: list[str] = []
