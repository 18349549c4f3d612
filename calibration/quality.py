"""Calibration quality against the number of frames, for any preset."""

from __future__ import annotations

import sys

import numpy as np

from devices import VirtualDevice

from .metrics import row_correlation
from .session import calibrate

__all__ = ["quality_against_frames", "plot_quality"]

PUBLISHED_R = 0.978  # a real 100 x 100 TM (Gupta et al., ICASSP 2020)


def quality_against_frames(preset: str, n_in: int, n_out: int,
                           probes=(1.0, 1.5, 2.0, 3.0, 4.0, 6.0), seed: int = 0,
                           verbose: bool = True) -> list[dict]:
    """Intensity r and median TM row correlation of ``preset`` for several probe budgets."""
    rows = []
    for count in probes:
        device = VirtualDevice(preset, n_in=n_in, n_out=n_out).open()
        result = calibrate(device, probes_per_input=count, camera=False, progress=False,
                           seed=seed)
        corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
        rows.append({"preset": preset, "probes_per_input": count,
                     "frames_per_input": result.tm.frames / n_in,
                     "intensity_r": result.intensity_r, "tm_corr": float(np.median(corr))})
        if verbose:
            print(f"  {preset}: {count} probes/input -> {result.tm.frames / n_in:.1f} "
                  f"frames/input, r = {result.intensity_r:.4f}", file=sys.stderr)
    return rows


def plot_quality(rows, path) -> None:
    """``1 - r`` and ``1 - row correlation`` against frames per input, one curve per preset."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for preset in dict.fromkeys(r["preset"] for r in rows):
        mine = [r for r in rows if r["preset"] == preset]
        x = [r["frames_per_input"] for r in mine]
        axes[0].plot(x, [max(1 - r["intensity_r"], 1e-12) for r in mine], "o-", label=preset)
        axes[1].plot(x, [max(1 - r["tm_corr"], 1e-12) for r in mine], "o-", label=preset)
    axes[0].axhline(1 - PUBLISHED_R, color="gray", ls="--",
                    label=f"published real device (r = {PUBLISHED_R})")
    for ax, what in zip(axes, ["1 - intensity r (fresh frames)", "1 - median TM row correlation"]):
        ax.set_yscale("log")
        ax.set_xlabel("device frames per input")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Calibration quality against frames")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
