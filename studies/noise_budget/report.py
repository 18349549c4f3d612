"""The noise budget as Markdown: measured and predicted per source, where the inputs came
from, the check, and the SNR split into the optics' and the encoding's."""

from __future__ import annotations

from .devices import SOURCES

__all__ = ["budget_markdown"]


def _db(value) -> str:
    return "-" if value is None else f"{value:.2f} dB"


def budget_markdown(budget: dict) -> str:
    """The budget as Markdown tables: SNR split, then each source against its prediction."""
    check = budget.get("check") or {}
    bands = check.get("bands", {})
    lines = [f"Device `{budget['device']}` ({budget['n_in']} inputs onto {budget['n_out']} "
             f"outputs, exposure {budget['exposure_us']:.1f} us, projected "
             f"{budget['elapsed_s']:g} device s after the fit); errors: "
             f"{budget['errors']['name']}, {budget['errors']['n_errors']} vectors, "
             f"{budget['errors']['encoder']} encoding.", "",
             f"Feedback SNR **{budget['snr_db']:.2f} dB**, correlation with `B e` "
             f"**{budget['correlation']:.4f}** (signal variance "
             f"{budget['signal_variance']:.4g} per output).", ""]
    if budget.get("snr"):
        lines += ["The SNR split: *optical* is every physical source with the encoding exact "
                  "(the device against the clean twin's projection of the same encoded "
                  "errors), *encoding* the encoding's error alone (the clean twin against "
                  "`B e`), *total* the device against `B e`.", "",
                  "| encoding | total SNR | optical SNR | encoding SNR |", "|---|---|---|---|"]
        for row in budget["snr"]:
            name = row["encoder"] + (f" ({row['n_bits']} bits per sign)" if row["n_bits"] else "")
            if row is budget["snr"][0]:
                name += " (the error set's)"
            lines.append(f"| {name} | {_db(row['total_db'])} | {_db(row['optical_db'])} | "
                         f"{_db(row['encoding_db'])} |")
        lines.append("")
    lines += ["| source | measured variance | +- se | predicted | measured / predicted | band "
              "| prediction's inputs |", "|---|---|---|---|---|---|---|"]
    for name, entry in budget["sources"].items():
        if not entry["on"]:
            lines.append(f"| {SOURCES[name]} | off | | off | - | | {entry.get('inputs', '')} |")
            continue
        ratio = ("both zero to float32 precision" if entry["ratio"] is None
                 else f"{entry['ratio']:.3f}")
        band = bands.get(name)
        band = f"{band[0]:.2f} .. {band[1]:.2f}" if band else ""
        se = "" if entry["measured_se"] is None else f"{entry['measured_se']:.2g}"
        extra = ""
        if "rows" in entry:
            extra = f" ({entry['realizations']} fits of {entry['rows']} errors)"
        elif "realizations" in entry:
            extra = f" ({entry['realizations']} realizations)"
        elif entry.get("tm_realizations", 1) > 1:
            extra = f" ({entry['tm_realizations']} media)"
        lines.append(f"| {SOURCES[name]}{extra} | {entry['measured']:.4g} | {se} | "
                     f"{entry['predicted']:.4g} | {ratio} | {band} | {entry.get('inputs', '')} |")
    total = budget["total"]
    se = "" if total.get("measured_se") is None else f"{total['measured_se']:.2g}"
    over = (f" ({total['realizations']} realizations)" if total.get("realizations") else "")
    lines += [f"| **sum of the sources** | {total['sum_measured']:.4g} | | "
              f"{total['sum_predicted']:.4g} | | | |",
              f"| **total (everything on){over}** | {total['measured']:.4g} | {se} | | "
              f"sum / total = {total['sum_over_total']:.3f} | | |"]
    flipped = {name: entry["outlier_realizations"] for name, entry in budget["sources"].items()
               if entry.get("outlier_realizations")}
    lines += ["", "A stochastic source is checked on its median realization (measured / "
              "predicted); its mean keeps every realization."]
    if flipped:
        lines.append("Realizations above twice the lower quartile (rows of the operator's "
                     "fit that flipped between reference and probe sizing, docs/design.md "
                     "section 7; when they are half or more, the median is one of them): " + ", ".join(f"{SOURCES[name]} {count} of "
                                                f"{budget['sources'][name]['realizations']}"
                                                for name, count in flipped.items()) + ".")
    return "\n".join(lines)
