"""Pages and figures of the physics layer's measurements: the speckle histogram, TM precision.

The numbers come from :mod:`photon.speckle`; this module only draws and writes them.
"""

from __future__ import annotations

import numpy as np

from photon.chain import OpticalChain
from photon.speckle import disjoint_frames

__all__ = ["plot_speckle_histogram", "precision_markdown"]


def plot_speckle_histogram(chain: OpticalChain, path, n_frames: int = 8) -> None:
    """Save a PNG histogram of normalized speckle intensity against the theory."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    intensity = chain.intensity(disjoint_frames(chain.n_in, n_frames)).astype(np.float64)
    normalized = (intensity / intensity.mean(axis=1, keepdims=True)).ravel()
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(normalized, bins=120, range=(0, 8), density=True, alpha=0.6, label="simulated")
    grid = np.linspace(0, 8, 400)
    ax.plot(grid, np.exp(-grid), "k--", label="exponential (polarized)")
    ax.plot(grid, 4 * grid * np.exp(-2 * grid), "k:", label="gamma k=2 (unpolarized)")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 2)
    ax.set_xlabel("intensity / mean")
    ax.set_ylabel("probability density")
    ax.set_title(f"{chain.summary()['name']}: speckle contrast "
                 f"{normalized.std():.3f} (theory {chain.polarizer.speckle_contrast:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def precision_markdown(rows: list[dict]) -> str:
    """A Markdown table of :func:`precision_effect`'s rows."""
    lines = ["| TM precision | intensity rms error (measured / theory) | speckle contrast | "
             "KS distance to exponential | error / shot noise |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['precision']} | {r['intensity_rel_rms_error']:.3g} / "
            f"{r['intensity_rel_rms_theory']:.3g} | {r['speckle_contrast']:.5f} "
            f"+- {r['speckle_contrast_se']:.5f} (theory {r['speckle_contrast_theory']:.4f}) | "
            f"{r['ks_exponential']:.5f} ({r['ks_samples']} samples) | "
            f"{r['error_over_shot_noise']:.3g} (at {r['mean_signal_electrons']:.0f} e-) |")
    return "\n".join(lines)
