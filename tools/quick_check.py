"""Check an install and a dataset copy on a CPU before spending GPU-days:

    python -m tools.quick_check DATASET ROOT [--protocol P] [--version V] [--run-dir DIR]
                                [--scale S]

Parses the set, trains Geng16's Table 8 "no ImageNet" recipe on the first
trial at a CPU-sized schedule, evaluates it with the set's own protocol and
prints rank-1 beside chance and beside the range measured here
(experiments/quick_check.py); outside that range (or, with no measured
range, below the demo's rule) it ends in one error line, exit 1.
Everything lands in runs/quick_check/<dataset>[_<protocol>] (--run-dir); a
rerun reuses what is done.
"""
import argparse
import os
import sys

from common import cli
from common.config import RUNS_ROOT
from common.layout import RESULTS_MD
from experiments.quick_check import DATASET_CHOICES, ITERS, SEED, check, result_line
from training.multi_gpu import Stopped


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.quick_check", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check an install and a dataset copy on a CPU before spending GPU-days:\n"
                    "parse the set, train Geng16's Table 8 \"no ImageNet\" recipe on its first\n"
                    "trial at a CPU schedule, evaluate with the set's protocol and print rank-1\n"
                    "beside chance and the range expected for the set (exit 1 outside it).\n"
                    "Writes into runs/quick_check/DATASET[_PROTOCOL] (--run-dir); a rerun\n"
                    "reuses what is done.",
        epilog="example:\n  python -m tools.quick_check cuhk01 /data/reid/cuhk01 --protocol 871/100")
    ap.add_argument("dataset", choices=DATASET_CHOICES)
    ap.add_argument("root", help="the dataset as distributed (synthetic: where to generate it)")
    ap.add_argument("--protocol", help="the parser's protocol (cuhk03: classic | new; "
                                       "cuhk01: 485/486 | 871/100)")
    ap.add_argument("--version", action=cli.VersionOr, choices=("labeled", "detected"),
                    help="cuhk03 images; alone: the package's version")
    ap.add_argument("--run-dir", help="default: runs/quick_check/DATASET[_PROTOCOL]")
    ap.add_argument("--scale", type=cli.positive_float, default=1.0,
                    help="multiply the %d iterations (a smoke test; only scale 1 has a "
                         "measured range)" % ITERS)
    ap.add_argument("--seed", type=cli.nonnegative_int, default=SEED,
                    help="Caffe's fillers and data order (default %d)" % SEED)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    name = "_".join([args.dataset] + [v.replace("/", "-") for v in (args.protocol, args.version)
                                      if v])
    run_dir = os.path.abspath(args.run_dir or os.path.join(RUNS_ROOT, "quick_check", name))
    try:
        res = check(args.dataset, args.root, run_dir, args.protocol, args.version, args.scale,
                    not args.no_progress, args.seed)
    except Stopped as stop:  # the stage's snapshot is saved and was said: no error line
        return stop.status
    print(result_line(res))
    print("Report: %s" % os.path.join(res["report"], RESULTS_MD))
    if not res["ok"]:
        raise cli.Failure("quick_check: %s rank-1 %.2f%%: %s" % (
            res["dataset"], 100 * res["rank1"], res["verdict"]))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
