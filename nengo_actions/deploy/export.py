"""Export a trained network for other tools: ``python -m nengo_actions.deploy.export``.

    python -m nengo_actions.deploy.export results/runs/<run> --format nir --out model.nir
    python -m nengo_actions.deploy.export results/runs/<run> --model dvs_gesture_net --out model.nir

The NIR graph (:mod:`nengo_actions.deploy.nir_export`) is read by snnTorch, SpikingJelly,
Lava-DL and the other tools of the NIR standard, and by ``python -m nengo_actions.train
--nir``. The last line printed is ``wrote PATH``.
"""

from __future__ import annotations

import argparse
import sys

from nengo_actions.config import run_command
from nengo_actions.deploy.nir_export import FORMATS, export_run, write_graph


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nengo_actions.deploy.export",
        description="Write a trained network of a run folder as a NIR graph.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder of the train command")
    parser.add_argument("--format", choices=FORMATS, default="nir", help="the file format (default: nir)")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write the graph")
    parser.add_argument("--model", metavar="NAME", help="the model to export when the run holds several")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    def job():
        graph = export_run(args.run_dir, args.model)
        kinds = [type(node).__name__ for node in graph.nodes.values()]
        print(f"{len(kinds)} nodes: " + ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds)))
        print(f"wrote {write_graph(graph, args.out)}", flush=True)
        return 0

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())
