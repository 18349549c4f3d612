"""Describe a device and what a projection job costs on it.

Usage::

    python scripts/opu_info.py --device datacenter-opu --json
    python scripts/opu_info.py --device lab-bench --n-vectors 10000 --n-features 1000

Prints the device's metadata and the modelled cost (frames, seconds, joules) of
projecting ``--n-vectors`` vectors of ``--n-features`` features: binary vectors in
intensity mode and in linear mode, and real-valued vectors in linear mode through a
signed ``--bits``-bit bit-plane encoder. The cost comes from the device's frame time and
wall-plug power; nothing is projected.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys

if importlib.util.find_spec("devices") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from devices import OPU, open_device  # noqa: E402

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="datacenter-opu",
                        help="preset, YAML path or backend name (default datacenter-opu)")
    parser.add_argument("--n-vectors", type=int, default=10_000)
    parser.add_argument("--n-features", type=int, default=1_000)
    parser.add_argument("--bits", type=int, default=8, help="bit planes per sign of real data")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    with open_device(args.device) as device:
        if args.n_features > device.n_in:
            parser.error(f"--n-features = {args.n_features}: expected at most the device's "
                         f"{device.n_in} inputs")
        opu = OPU(device)
        jobs = {
            "intensity_binary": opu.cost(args.n_vectors, "intensity"),
            "linear_binary": opu.cost(args.n_vectors, "linear"),
            f"linear_real_{args.bits}bit": opu.cost(args.n_vectors, "linear",
                                                    planes_per_vector=2 * args.bits),
        }
        result = {"device": device.metadata(), "n_vectors": args.n_vectors,
                  "n_features": args.n_features,
                  "cost": {name: job.as_dict() for name, job in jobs.items()}}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    meta = result["device"]
    print(f"{meta['name']} ({meta['backend']}): {meta['n_in']} inputs -> {meta['n_out']} outputs, "
          f"{meta['frames_per_s']:.0f} frames/s, {meta['electrical_power_w']} W")
    print(f"projecting {args.n_vectors} vectors of {args.n_features} features:")
    print(f"  {'job':<22} {'frames':>10} {'seconds':>10} {'joules':>10}")
    for name, job in jobs.items():
        print(f"  {name:<22} {job.frames:>10} {job.seconds:>10.3f} {job.joules:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
