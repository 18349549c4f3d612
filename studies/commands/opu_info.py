"""Describe a device and what a projection job costs on it.

Usage::

    python scripts/opu_info.py --device datacenter-opu --json
    python scripts/opu_info.py --device lab-bench --n-vectors 10000 --n-features 1000

Prints the device's metadata and the modelled cost (frames, seconds, joules) of
projecting ``--n-vectors`` vectors of ``--n-features`` features: binary vectors in
intensity mode and in linear mode, and real-valued vectors in linear mode through a
signed ``--bits``-bit bit-plane encoder. The cost comes from the device's frame time and
wall-plug power; nothing is projected.

The frame time depends on the outputs read: the camera reads the sensor rows holding
them. ``--n-out`` builds the device with that many outputs (a smaller region of
interest, a higher frame rate down to the DMD's period); for a virtual device the
``readout`` block gives the rows read, the line time, the full-frame rate and the
tallest region that keeps up with the DMD.

The ``calibration`` block prices calibrating the device (:mod:`calibration.cost`): the
device time of a whole calibration next to the medium's drift time, the largest input
count calibratable within a tenth of it, and the ways to fit (fewer probes, the
outputs read at the DMD's rate, only the job's ``--n-features`` inputs and
``--job-outputs`` outputs). Their quality, measured, is on the calibration page
(``docs/calibration``).
"""

from __future__ import annotations


from calibration.cost import device_calibration_cost
from devices import OPU, open_device
from photon import ConfigError
from photon.support.jsonio import dumps
from ._parser import CommandParser, int_in, positive_int

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="datacenter-opu",
                        help="preset, YAML path or backend name (default datacenter-opu)")
    parser.add_argument("--n-vectors", type=positive_int, default=10_000)
    parser.add_argument("--n-features", type=positive_int, default=1_000)
    parser.add_argument("--bits", type=int_in(1, 16), default=8, help="bit planes per sign of real data")
    parser.add_argument("--n-out", type=positive_int, default=None,
                        help="outputs read (default: the device's); sets the camera's region "
                             "of interest and so the frame rate")
    parser.add_argument("--job-outputs", type=positive_int, default=None,
                        help="outputs the job reads, for its calibration plan (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.n_out is not None and args.n_out < 1:
        parser.error(f"--n-out = {args.n_out}: expected a positive number of outputs")
    if args.job_outputs is not None and args.job_outputs < 1:
        parser.error(f"--job-outputs = {args.job_outputs}: expected a positive number of "
                     "outputs")

    overrides = {} if args.n_out is None else {"n_out": args.n_out}
    try:
        device = open_device(args.device, **overrides)
    except ConfigError as err:
        parser.error(str(err))
    with device:
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
        meta = device.metadata()
        result = {"device": meta, "n_vectors": args.n_vectors,
                  "n_features": args.n_features,
                  "cost": {name: job.as_dict() for name, job in jobs.items()}}
        readout = meta.get("physics", {}).get("readout")
        if readout is not None:
            result["readout"] = {"n_out": device.n_out, "frames_per_s": meta["frames_per_s"],
                                 **readout}
        job = (args.n_features, min(device.n_out, args.job_outputs or device.n_out))
        result["calibration"] = device_calibration_cost(device, job=job).as_dict()
    if args.json:
        print(dumps(result, indent=2))
        return 0
    meta = result["device"]
    print(f"{meta['name']} ({meta['backend']}): {meta['n_in']} inputs -> {meta['n_out']} outputs, "
          f"{meta['frames_per_s']:.0f} frames/s, {meta['electrical_power_w']} W")
    readout = result.get("readout")
    if readout is not None:
        print(f"read-out: {readout['rows_read']} of {readout['sensor_rows']} sensor rows at "
              f"{readout['line_time_us']:g} us + {readout['frame_overhead_us']:g} us per frame "
              f"({readout['full_frame_rate_hz']:.1f} frames/s at full frame)")
        if readout["max_rows_at_dmd_rate"]:
            print(f"  the DMD's {readout['dmd_rate_hz']:g} Hz for up to "
                  f"{readout['max_rows_at_dmd_rate']} rows ({readout['max_outputs_at_dmd_rate']} "
                  "outputs)")
        else:
            print(f"  never the DMD's {readout['dmd_rate_hz']:g} Hz: one row reads at "
                  f"{readout['one_row_rate_hz']:.1f} frames/s at most")
    calib = result["calibration"]
    drift = calib["drift_time_s"]
    print("calibration (4 probes per input): "
          + ("static medium" if drift is None else f"drift time {drift:g} s, budget "
             f"{calib['budget_s']:g} s"))
    for plan in [calib["whole"]] + calib["ways_to_fit"]:
        fits = "" if plan["fits"] is None else (" fits" if plan["fits"] else " does not fit")
        largest = ("" if plan["largest_n_in"] is None
                   else f"; at most {plan['largest_n_in']} inputs fit")
        print(f"  {plan['label']:<42} {plan['n_in']} x {plan['n_out']}: {plan['frames']} "
              f"frames, {plan['device_s']:.4g} s{fits}{largest}")
    print(f"projecting {args.n_vectors} vectors of {args.n_features} features:")
    print(f"  {'job':<22} {'frames':>10} {'seconds':>10} {'joules':>10}")
    for name, job in jobs.items():
        print(f"  {name:<22} {job.frames:>10} {job.seconds:>10.3f} {job.joules:>10.2f}")
    return 0
