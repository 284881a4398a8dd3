"""Run one training stage in-process through pycaffe's solver, resumably.

    python -m tools.train --solver S.prototxt --run-dir runs/X [--weights W.caffemodel]
                          [--snapshot-every 1000] [--gpu 0 | --gpus 0,1] [--seed 1]

Prints the final weights' path. The stage (training/stage.py) runs in a
child process, so that Caffe aborting it ends in one `error: Caffe aborted:
…` line; Ctrl-C or SIGTERM snapshots and ends with status 130, and the
same command resumes. What a run directory holds, how a rerun is reused or
refused (--recompute), and the multi-GPU run are described there.
"""
import argparse
import sys

from common import cli
from training import multi_gpu
from training.child import run_in_child
from training.multi_gpu import Stopped


def _gpus_arg(text):
    try:
        return multi_gpu.parse_gpus(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one training stage through pycaffe's solver, resumably, in a child\n"
                    "process. Reads the solver prototxt (its net and LMDBs) and --weights;\n"
                    "writes train.log, state.json, snapshots and final.caffemodel into\n"
                    "--run-dir and prints the final weights' path. Ctrl-C or SIGTERM\n"
                    "snapshots; the same command resumes.",
        epilog="example:\n"
               "  python -m tools.train --solver S.prototxt --run-dir runs/stage1 \\\n"
               "      --weights init.caffemodel --gpu 0")
    ap.add_argument("--solver", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--weights")
    ap.add_argument("--snapshot-every", type=int, default=1000)
    device = ap.add_mutually_exclusive_group()
    device.add_argument("--gpu", type=int, metavar="ID", help="train on this GPU (default: the CPU)")
    device.add_argument("--gpus", type=_gpus_arg, metavar="ID,ID,...",
                        help="train data-parallel on these GPUs with Caffe's NCCL, one process "
                             "each; an iteration takes the prototxt's batch on every GPU")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--recompute", action="store_true",
                    help="train afresh when the run directory holds a stage made from other "
                         "inputs (default: refuse)")
    args = ap.parse_args(argv)
    try:
        final = run_in_child(dict(solver_path=args.solver, run_dir=args.run_dir,
                                  weights=args.weights, snapshot_every=args.snapshot_every,
                                  gpu=args.gpu, seed=args.seed, progress=not args.no_progress,
                                  gpus=args.gpus, recompute=args.recompute), args.debug)
    except Stopped as stop:  # the snapshot is saved and was said: no error line
        return stop.status
    print(final)


if __name__ == "__main__":
    sys.exit(cli.run(main))
