"""The README's main job (`make demo`): both papers' pipelines end to end on
synthetic data in Market-1501's layout, on a CPU, no download:

    python -m tools.demo [--run-dir runs/demo] [--unsupervised] [--recompute]

Two synthetic sets, Geng16's staged transfer with the DGDNet base
(two-stepped fine-tuning on the target), MTDnet on the target, one report
beside chance level and its page (experiments/demo.py `run`); with
--unsupervised, Geng16's unsupervised transfer instead (`unsupervised`).
Everything lands in runs/demo (--run-dir); a rerun skips what is done and
resumes an interrupted stage. A model that learned nothing ends in one
error line, exit 1, after the report is written.
"""
import os
import sys

from common import cli, provenance
from common.config import RUNS_ROOT
from experiments import demo
from training.stage import Stopped


def main(argv=None):
    ap = cli.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", default=os.path.join(RUNS_ROOT, "demo"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--unsupervised", action="store_true",
                    help="instead: Geng16's unsupervised transfer (Tables 7, 9) on the synthetic "
                         "target, every model side by side")
    ap.add_argument("--recompute", action="store_true",
                    help="remake the outputs whose record differs from this run's (without it "
                         "they are refused, never reused)")
    args = ap.parse_args(argv)
    run_dir = os.path.abspath(args.run_dir)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise NotADirectoryError("--run-dir %s is an existing file; give a folder" % run_dir)
    options = dict(vars(args), run_dir=run_dir, **demo.settings())
    del options["debug"]
    try:
        with provenance.invocation("tools.demo", argv, options, run_dir):
            (demo.unsupervised if args.unsupervised else demo.run)(
                run_dir, progress=not args.no_progress, recompute=args.recompute)
    except Stopped as stop:  # a stage's snapshot is saved and was said: no error line
        return stop.status
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
