"""DVS event decoding and framing: nengo_actions.data vs SpikingJelly and tonic.

One process, one input: the 2,000,000-event AEDAT 3.1 file of the peer benchmark kit
(about one DVS128 Gesture trial; made by its ``make_aedat31.py`` when missing).

- decode: file -> x, y, p, t. ``read_aedat`` vs SpikingJelly's ``load_aedat_v3`` and
  tonic's AEDAT 3.x reader (``tonic.io.read_dvs_ibm``'s body with its header unpacking
  fixed: as released it raises).
- frame: events -> 16 frames of 2 x 128 x 128 by equal event counts, each library from
  its own in-memory format. ``to_frames`` vs SpikingJelly's
  ``integrate_events_by_fixed_frames_number`` and tonic's ``ToFrame(n_event_bins=16)``.

The contestants are timed in interleaved rounds (so a busy moment slows all of them) after
one warm-up each; a contestant stops after ``--budget-s`` seconds of timed runs. Outputs
are checked equal before timing. The table goes into the "Event data" section of
``benchmarks/README.md``.

It runs with the peer kit's interpreter (``nengo_actions.data`` needs only numpy)::

    bash ../shared/peers/setup_peers.sh
    /tmp/peers-venv/bin/python benchmarks/bench_events.py

Without the peer kit or its libraries (any other interpreter), or with ``--no-peers``,
only nengo_actions is timed, on a file of ``--events`` events written by
:func:`nengo_actions.data.write_aedat31` when the kit's writer is missing too::

    .venv/bin/python benchmarks/bench_events.py --aedat /tmp/small.aedat --events 20000 --readme /tmp/README.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import importlib
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _project_package():
    """Make ``import nengo_actions`` work in the peer kit's venv, which does not install
    this project: the package is loaded from this checkout, as the kit's modules are."""
    try:
        importlib.import_module("nengo_actions")
    except ModuleNotFoundError:
        folder = REPO / "nengo_actions"
        spec = importlib.util.spec_from_file_location("nengo_actions", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["nengo_actions"] = module
        spec.loader.exec_module(module)


_project_package()

from nengo_actions.data import make_events, read_aedat, to_frames, write_aedat31  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
HEADING = "## Event data: decoding and framing (bench_events.py)"
TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
T_FRAMES, HEIGHT, WIDTH = 16, 128, 128


def tonic_read_dvs_ibm(path):
    """tonic.io.read_dvs_ibm with its header unpacking fixed (tonic 1.7.0's
    read_aedat_header_from_file returns 3 values, read_dvs_ibm unpacks 2)."""
    import tonic.io as tio

    version, start = tio.read_aedat_header_from_file(str(path))[:2]
    raw = tio.get_aer_events_from_file(str(path), version, start)
    address = raw["address"]
    return tio.make_structured_array(
        (address >> 17) & 0x1FFF, (address >> 2) & 0x1FFF, raw["timeStamp"], (address >> 1) & 1
    )


def run_rounds(contestants, max_repeats, budget_s):
    """Time ``{name: fn}`` in interleaved rounds; return ``{name: [seconds, ...]}``."""
    for fn in contestants.values():
        fn()
    times = {name: [] for name in contestants}
    for _ in range(max_repeats):
        active = [n for n in contestants if sum(times[n]) < budget_s]
        if not active:
            break
        for name in active:
            start = time.perf_counter()
            contestants[name]()
            times[name].append(time.perf_counter() - start)
    return times


def table(job, times, n_events, ours):
    rows = []
    our_median = statistics.median(times[ours])
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(
            f"| {job} | {name} | {median * 1e3:,.1f} | {min(values) * 1e3:,.1f} | "
            f"{n_events / median / 1e6:,.1f} | {len(values)} | "
            f"{'-' if name == ours else f'{median / our_median:.1f}x'} |"
        )
    return rows


def peer_module(kit, name):
    """A module of the peer kit, loaded from its file (the kit is a folder, not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(kit) / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def synthetic_events(n, seed=0):
    """``n`` events of a blob circling the 128 x 128 sensor plus 10% noise, as the peer
    kit's ``make_aedat31.py`` draws them (for a file when the kit is not there)."""
    rng = np.random.default_rng(seed)
    t = 1_000_000 + np.cumsum(1 + rng.poisson(max(66e6 / n, 1.0) - 1, n)).astype(np.int64)
    phase = 2 * np.pi * (t - t[0]) / 2e6
    x = 64 + 35 * np.cos(phase) + rng.normal(0, 10, n)
    y = 64 + 35 * np.sin(phase) + rng.normal(0, 10, n)
    noise = rng.random(n) < 0.1
    x[noise], y[noise] = rng.integers(0, 128, noise.sum()), rng.integers(0, 128, noise.sum())
    x, y = (np.clip(np.rint(v), 0, 127).astype(np.int64) for v in (x, y))
    return make_events(x, y, rng.integers(0, 2, n), t)


def peer_libraries(kit):
    """``(peer_compat module, None)``, or ``(None, why the peers cannot run)``."""
    if not (Path(kit) / "peer_compat.py").is_file():
        return None, f"no peer kit at {kit}"
    try:
        import tonic.transforms  # noqa: F401

        peer_compat = peer_module(kit, "peer_compat")
        peer_compat.import_sj_datasets()
    except ImportError as e:
        return None, (f"{type(e).__name__}: {e} (run it with the peer kit's interpreter, "
                      "made by bash ../shared/peers/setup_peers.sh)")
    return peer_compat, None


def main(argv=None):
    from readme_section import write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aedat", type=Path, default=Path("/tmp/peers-data/synth_gesture.aedat"))
    parser.add_argument("--events", type=int, default=2_000_000, help="events in the file, when it must be made")
    parser.add_argument("--peers", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "peers", help="peer benchmark kit")
    parser.add_argument("--no-peers", action="store_true", help="time nengo_actions only")
    parser.add_argument("--repeats", type=int, default=21, help="timed rounds at most")
    parser.add_argument("--budget-s", type=float, default=20.0, help="timed seconds per contestant at most")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    parser.add_argument("--readme", type=Path, default=README, help="the README whose section is rewritten")
    args = parser.parse_args(argv)

    peer_compat, skip = (None, "--no-peers") if args.no_peers else peer_libraries(args.peers)
    if skip:
        print(f"peers skipped: {skip}; timing nengo_actions only", flush=True)
    source = "the peer kit's AEDAT 3.1 file"
    if not args.aedat.exists():
        if (Path(args.peers) / "make_aedat31.py").is_file():
            print(f"writing {args.aedat} ({args.events:,} events) with the peer kit's make_aedat31.py")
            peer_module(args.peers, "make_aedat31").make(str(args.aedat), args.events)
        else:
            print(f"writing {args.aedat} ({args.events:,} events) with nengo_actions.data.write_aedat31")
            args.aedat.parent.mkdir(parents=True, exist_ok=True)
            write_aedat31(args.aedat, synthetic_events(args.events), packet_events=1024)
            source = "a synthetic AEDAT 3.1 file (nengo_actions.data.write_aedat31)"

    ours = read_aedat(args.aedat)
    n = ours.shape[0]
    decoders = {"nengo_actions read_aedat": lambda: read_aedat(args.aedat)}
    framers = {"nengo_actions to_frames": lambda: to_frames(ours, (WIDTH, HEIGHT, 2), T_FRAMES, "number")}
    frames = {"nengo_actions to_frames": framers["nengo_actions to_frames"]()}
    installed = {}
    if peer_compat is not None:
        import tonic.transforms as tonic_transforms

        sj, note = peer_compat.import_sj_datasets()
        if note:
            print("note:", note)
        installed = peer_compat.versions()
        # Same events from all three readers (the file's events are all valid).
        theirs = sj.load_aedat_v3(str(args.aedat))
        tonic_events = tonic_read_dvs_ibm(args.aedat)
        for name in "xypt":
            assert np.array_equal(ours[name], theirs[name]), f"SpikingJelly's {name} differs"
            assert np.array_equal(ours[name], tonic_events[name]), f"tonic's {name} differs"
        print(f"{args.aedat}: {n:,} events, {args.aedat.stat().st_size / 1e6:.1f} MB; readers agree")

        sj_input = theirs  # SpikingJelly's own format: a dict of int64 arrays
        tonic_input = np.empty(n, dtype=TONIC_DTYPE)  # tonic.datasets.DVSGesture's layout
        for name in "xypt":
            tonic_input[name] = ours[name]
        to_frame = tonic_transforms.ToFrame(sensor_size=(WIDTH, HEIGHT, 2), n_event_bins=T_FRAMES)
        decoders["SpikingJelly load_aedat_v3"] = lambda: sj.load_aedat_v3(str(args.aedat))
        decoders["tonic read_dvs_ibm (fixed)"] = lambda: tonic_read_dvs_ibm(args.aedat)
        framers["SpikingJelly integrate_events_by_fixed_frames_number"] = lambda: sj.integrate_events_by_fixed_frames_number(
            sj_input, "number", T_FRAMES, HEIGHT, WIDTH
        )
        framers["tonic ToFrame(n_event_bins=16)"] = lambda: to_frame(tonic_input)
        frames.update({name: fn() for name, fn in framers.items() if name not in frames})
    else:
        print(f"{args.aedat}: {n:,} events, {args.aedat.stat().st_size / 1e6:.1f} MB")
    reference = frames["nengo_actions to_frames"]
    for name, value in frames.items():
        assert value.shape == reference.shape and np.array_equal(value, reference), f"{name} differs"
    print(f"frames {reference.shape}: all {len(frames)} equal" if len(frames) > 1 else f"frames {reference.shape}")

    decode = run_rounds(decoders, args.repeats, args.budget_s)
    frame = run_rounds(framers, args.repeats, args.budget_s)
    rows = table("decode", decode, n, "nengo_actions read_aedat") + table("frame", frame, n, "nengo_actions to_frames")

    def speedup(times, ours_name, stat=statistics.median):
        return min(stat(v) for k, v in times.items() if k != ours_name) / stat(times[ours_name])

    if skip:
        verdict = f"Peers skipped in this run ({skip}): nengo_actions alone."
    else:
        verdict = (
            f"Speed-up over the faster peer, by medians (by minima): decoding "
            f"{speedup(decode, 'nengo_actions read_aedat'):.1f}x "
            f"({speedup(decode, 'nengo_actions read_aedat', min):.1f}x; goal 3x), framing "
            f"{speedup(frame, 'nengo_actions to_frames'):.1f}x "
            f"({speedup(frame, 'nengo_actions to_frames', min):.1f}x; goal 1.5x)."
        )
    load = os.getloadavg()
    section = "\n".join(
        [
            HEADING,
            "",
            f"One run on {datetime.date.today()}: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores shared with other jobs (load average {load[0]:.1f} at the end), "
            f"Python {platform.python_version()}, numpy {np.__version__}"
            + "".join(f", {k} {v}" for k, v in installed.items() if k in ("spikingjelly", "tonic"))
            + ".",
            "",
            f"Input: {source}, {n:,} polarity events in packets of 1,024 "
            f"({args.aedat.stat().st_size / 1e6:.1f} MB). Decode: file -> x, y, p, t. Frame: the "
            f"decoded events, in each library's own format, -> {T_FRAMES} x 2 x {HEIGHT} x {WIDTH} "
            "by equal event counts. All outputs were checked equal. Times are medians (and minima) "
            "of interleaved rounds after a warm-up; 'slower' is a peer's median over ours.",
            "",
            "| job | library | median ms | min ms | M events/s | runs | slower |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            verdict,
            "",
            "How: the reader streams the file through a 1 MB buffer, walks the packet "
            "headers in Python (a few thousand per file) and decodes blocks of up to 32,768 "
            "events while they are in the CPU cache: each 8-byte event is one uint64, and x, "
            "y and p reach their places in the 16-byte record with a mask, a multiply and two "
            "shifts. Framing copies each event's first 8 bytes (x | y << 16 | p << 32) into a "
            "cached block, ORs them to check every event lies on the sensor, moves the three "
            "fields side by side with one multiply and one shift, and counts with one "
            "np.bincount per frame. The machine is shared, so absolute times move between "
            "runs by 1.5x or more; the ratios within a run are the figures to compare.",
            "",
            "Run it with the peer kit's interpreter (numpy is all nengo_actions.data needs):",
            "",
            "    bash ../shared/peers/setup_peers.sh",
            "    /tmp/peers-venv/bin/python benchmarks/bench_events.py",
            "",
        ]
    )
    print(section)
    if not args.no_readme:
        write_section(section, HEADING, args.readme)
        print(f"wrote the section of {args.readme}")


if __name__ == "__main__":
    main()
