"""Feature extraction speed: the extractor vs a naive per-frame torchvision loop, and the
achieved GFLOP/s vs this CPU's float32 matrix-multiply rate. Also the demo's budget.

1. Frames: the real UCF101 clip ``v_ApplyEyeMakeup_g01_c01`` (fixtures), decoded and
   resized to 224x224 once; both contestants get the same ``uint8`` frames.
2. Naive loop: what one writes from the torchvision docs: ``resnet152`` with ``fc``
   replaced by ``Identity``, one frame at a time (ToTensor + Normalize, batch of one,
   ``torch.no_grad``, default memory layout).
3. The extractor: :class:`feature_extraction.backbones.FrameEncoder` as the pipeline runs
   it (BatchNorm folded, channels-last, ``torch.inference_mode``, batches of
   ``--batch`` frames, normalisation inside the network), the same random weights. Both
   outputs are checked equal (to float rounding) before timing.
4. Matrix multiply: ``torch.mm`` of two 4096 x 4096 float32 matrices, timed between the
   network rounds so that both see the same machine load.

FLOPs: ResNet-152 needs 11.51 G multiply-accumulates per 224x224 frame (torchvision's
"GFLOPS" figure counts multiply-accumulates), i.e. 23.0 GFLOP; a matrix multiply of n x n
matrices is 2 n^3 FLOP. Both rates below count 2 FLOP per multiply-accumulate.

5. The demo budget: generation of the synthetic set of ``configs/config.json`` plus its
   extraction with that config's settings, through the same functions as the command
   (in a temporary folder), and the motion probe (:mod:`feature_extraction.probe`) on
   the resulting store.

The table goes into the "Feature extraction" section of ``benchmarks/README.md``::

    .venv/bin/python benchmarks/bench_extract.py            # about 3-5 minutes on 2 cores

``--backbone``, ``--size``, ``--matmul-n`` and ``--demo-set KEY=VALUE`` (overrides of the
demo's config) make it small, e.g. for a check that it still runs::

    .venv/bin/python benchmarks/bench_extract.py --backbone resnet18 --size 32 --frames 2 --naive-frames 1 \
        --batch 2 --rounds 1 --matmul-n 64 --demo-set data.synthetic.n_classes=2 ... --readme /tmp/README.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402
import torchvision  # noqa: E402

from feature_extraction import extract  # noqa: E402
from feature_extraction.backbones import GMACS_224, build_encoder, fold_batch_norm  # noqa: E402
from feature_extraction.frames import FrameSampler, Resize, load_clip  # noqa: E402
from feature_extraction.probe import motion_probe  # noqa: E402
from nengo_actions.config import IMAGENET_MEAN, IMAGENET_STD, load_config  # noqa: E402
from nengo_actions.store import load_split  # noqa: E402

README = ROOT / "benchmarks" / "README.md"
BACKBONES = tuple(GMACS_224)
HEADING = "## Feature extraction (bench_extract.py)"
CLIP = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "ucf101" / "test.avi"


def matmul_gflops(n=4096, repeats=2):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class NaiveLoop:
    """One frame at a time, as in torchvision's documentation."""

    def __init__(self, backbone="resnet152", seed=0):
        torch.manual_seed(seed)
        self.model = getattr(torchvision.models, backbone)(weights=None)
        self.model.fc = torch.nn.Identity()
        self.model.eval()
        self.normalize = torchvision.transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)

    def __call__(self, frames):
        out = []
        with torch.no_grad():
            for frame in frames:
                x = torchvision.transforms.functional.to_tensor(frame)  # HWC uint8 -> CHW [0, 1]
                out.append(self.model(self.normalize(x).unsqueeze(0))[0])
        return torch.stack(out)


class Extractor:
    """The pipeline's encoder, as :func:`feature_extraction.extract.prepare` sets it up."""

    def __init__(self, batch, backbone="resnet152", seed=0):
        self.encoder = fold_batch_norm(build_encoder(backbone, seed=seed)).to(memory_format=torch.channels_last)
        self.batch = batch

    def __call__(self, frames):
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch):
                out.append(self.encoder(torch.from_numpy(frames[start:start + self.batch])))
        return torch.cat(out)


def time_rounds(contestants, frames, rounds, matmul_n=4096):
    """Interleaved rounds: {name: [frames/s per round]}, with a matmul rate between them."""
    rates = {name: [] for name in contestants}
    rates["matmul GFLOP/s"] = []
    for r in range(rounds):
        for name, (run, n) in contestants.items():
            start = time.perf_counter()
            run(frames[:n])
            rates[name].append(n / (time.perf_counter() - start))
            rates["matmul GFLOP/s"].append(matmul_gflops(matmul_n))
            print(f"round {r + 1}: {name} {rates[name][-1]:.3f} frames/s, "
                  f"matmul {rates['matmul GFLOP/s'][-1]:.1f} GFLOP/s", flush=True)
    return rates


def demo_budget(workdir, overrides=()):
    """Generate + extract the demo set as the command does; seconds and probe scores."""
    cfg = load_config(ROOT / "configs" / "config.json", [f"data.root={workdir / 'data'}", *overrides])
    if cfg.data.dataset != "synthetic_actions":
        raise SystemExit("configs/config.json does not use the synthetic action set")
    start = time.perf_counter()
    extract.load_dataset(cfg.data, progress=False)
    generated = time.perf_counter() - start
    summary = extract.extract(cfg, progress=False)
    total = time.perf_counter() - start
    store = summary.store_dir
    scores = motion_probe(load_split(store / "train.npz"), load_split(store / "test.npz"))
    return {
        "generate_s": generated, "total_s": total, "extract_fps": summary.fps,
        "clips": summary.clips_done, "n_frames": summary.frames_this_run,
        "shape": summary.shape, "sides": summary.sides, "probe": scores,
        "synthetic": cfg.data.synthetic, "frames": cfg.frames, "features": cfg.features,
    }


def main(argv=None):
    from readme_section import write_section

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="the video whose frames are timed")
    parser.add_argument("--frames", type=int, default=64, help="frames per extractor round")
    parser.add_argument("--naive-frames", type=int, default=8, help="frames per naive round")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 64], help="extractor batch sizes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backbone", default="resnet152", choices=BACKBONES, help="network of both contestants")
    parser.add_argument("--size", type=int, default=224, help="frame height and width")
    parser.add_argument("--matmul-n", type=int, default=4096, help="side of the timed matrix multiply")
    parser.add_argument("--demo-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the demo's configs/config.json (repeatable)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument("--readme", type=Path, default=README, help="the README whose section is rewritten")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    frames, _, _ = load_clip(args.clip, FrameSampler("first", max(args.frames, args.naive_frames)), Resize(args.size, args.size))
    naive = NaiveLoop(args.backbone)
    extractors = {b: Extractor(b, args.backbone) for b in args.batch}
    # same function: the extractor (folded BN, uint8 input) against the naive loop
    want = naive(frames[:2])
    got = extractors[args.batch[0]](frames[:2])
    error = ((got - want).abs().max() / want.abs().max()).item()
    assert error < 1e-4, f"extractor and naive loop disagree: relative error {error:.2e}"
    for run in (naive, *extractors.values()):  # warm-up: oneDNN builds its kernels per shape
        run(frames[:min(len(frames), 8)])

    contestants = {"naive per-frame loop": (naive, args.naive_frames)}
    for b, run in extractors.items():
        contestants[f"extractor, batch {b}"] = (run, args.frames)
    rates = time_rounds(contestants, frames, args.rounds, args.matmul_n)
    gmacs = GMACS_224[args.backbone]
    flop = 2 * gmacs * args.size**2 / 224**2  # the convolutions scale with the frame's area
    # best of the rounds: the rate each reached when the shared machine let it
    matmul_rates = rates.pop("matmul GFLOP/s")
    matmul, matmul_median = max(matmul_rates), statistics.median(matmul_rates)
    naive_fps = max(rates["naive per-frame loop"])
    naive_median = statistics.median(rates["naive per-frame loop"])

    rows = []
    for name, values in rates.items():
        fps, median = max(values), statistics.median(values)
        rows.append(f"| {name} | {fps:.3f} | {median:.3f} | {fps * flop:.1f} | {fps * flop / matmul:.0%} | "
                    f"{fps / naive_fps:.2f}x ({median / naive_median:.2f}x) |")
    demo = None
    if not args.no_demo:
        with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
            demo = demo_budget(Path(tmp), args.demo_set)
            shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()[0]

    today = datetime.date.today().isoformat()
    lines = [
        HEADING, "",
        f"One run on {today}: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average {load_start:.1f} at the start, {load_end:.1f} at the end), torch "
        f"{torch.__version__}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}.",
        "",
        f"ResNet-{args.backbone[len('resnet'):]} on {args.size}x{args.size} frames of a real UCF101 clip, "
        f"random weights (seed 0), the same for "
        f"both. GFLOP/s count 2 FLOP per multiply-accumulate: {flop:.1f} GFLOP per frame "
        f"(torchvision's {gmacs:.1f} \"GFLOPS\" are multiply-accumulates"
        + (", at 224x224" if args.size != 224 else "")
        + f"), and 2n^3 for the matrix "
        f"multiply. {args.rounds} interleaved rounds after a warm-up; the float32 matrix multiply "
        f"(torch.mm, {args.matmul_n}x{args.matmul_n}) ran between the rounds: best {matmul:.1f} GFLOP/s (median "
        f"{matmul_median:.1f}). Rates and ratios use each contestant's best round (the machine "
        f"is shared, so the best round is the one least slowed by other jobs); medians beside them.",
        "",
        "| contestant | frames/s (best) | frames/s (median) | GFLOP/s | of best matmul rate | vs naive (medians) |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    if demo is not None:
        probe, syn, fr, fe = demo["probe"], demo["synthetic"], demo["frames"], demo["features"]
        lines += [
            "Demo budget (goal: at most 60 s), configs/config.json "
            + (f"with {' '.join('--demo-set ' + o for o in args.demo_set)}" if args.demo_set else "as it stands")
            + ": generating the synthetic set "
            f"({syn.n_classes} classes x {syn.n_groups} groups x {syn.clips_per_group} clips, "
            f"{syn.n_frames} frames of {syn.size[0]}x{syn.size[1]}) took {demo['generate_s']:.1f} s; "
            f"generation plus extraction ({demo['clips']} clips, {demo['n_frames']} frames, {fe.backbone} at "
            f"{fr.resize[0]}x{fr.resize[1]} with a {fe.pool_grid}x{fe.pool_grid} grid, "
            f"{fr.policy} {fr.n_frames} steps: {demo['shape'][0]} steps x {demo['shape'][1]} features) took "
            f"{demo['total_s']:.1f} s ({demo['extract_fps']:.0f} frames/s in the network). "
            f"Motion probe on the store (nearest class mean of the mean feature change over time, "
            f"train {demo['sides']['train']} clips -> test {demo['sides']['test']} clips): "
            f"{probe['motion']:.1%}; the same classifier on the middle frame alone: "
            f"{probe['single_frame']:.1%} (chance {probe['chance']:.1%}).",
            "",
        ]
    lines += [
        "How: the extractor feeds the network batches of frames in channels-last layout "
        "(the uint8 frames are already NHWC, so normalisation inside the network makes no "
        "copy), folds every BatchNorm into its convolution, and runs under "
        "torch.inference_mode. TorchScript freezing was tried: no consistent gain on "
        "ResNet-152 here, after two minutes of compilation, so it is not used. "
        "bfloat16 was not used: this CPU has no bfloat16 matrix instructions (no AVX-512 BF16 or AMX). "
        "The machine is shared, so absolute rates move between runs; the ratios within a "
        "run are the figures to compare.",
        "",
        "    .venv/bin/python benchmarks/bench_extract.py",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(section, HEADING, args.readme)
        print(f"wrote the section of {args.readme}")


if __name__ == "__main__":
    main()
