"""One command per experiment of the two papers (issue 7):

    python -m tools.reproduce --list
    python -m tools.reproduce geng16 table2 --data-root /data/reid
    python -m tools.reproduce geng16 table4 sid_tl --scale 0.01
    python -m tools.reproduce mtdnet cuhk01 cross --trials 10 --gpu 0

Each experiment (experiments/recipes.py) runs data preparation, every
training stage (staged transfer, two-stepped unless the row says
otherwise), feature extraction or CIR scoring, and evaluation, and ends with
the report beside the paper's numbers (results.md, results.json, cmc.png),
printed with its page's path. Everything goes under --run-dir (default
runs/<experiment>); a stage already done is skipped and an interrupted one
resumes, so rerunning the same command continues where it stopped.

Datasets are read from <data-root>/<name>/ (market1501, cuhk03, viper,
prid2011, cuhk01, ilids) as distributed (REFERENCE.md §4). ImageNet and
CaffeNet weights come through tools.fetch_weights (or --imagenet /
--caffenet). `--scale` shrinks every schedule (1 = the paper's iterations);
`--trials` is how many of a dataset's random splits are trained and
averaged (the papers: all 10 of the small sets, 20 of CUHK03).

Fidelity choices (README "Fidelity choices"), each defaulting to the
paper's reading; an experiment keeps its key, and its stages made under
another reading are refused unless --recompute:
    --pairs unordered|ordered   Geng16 in-batch pairs (§5.2's "3,968 … respectively")
    --step1-pv                  Geng16 step 1 also trains the new PV layers
    --rnk-net ours|authors      MTDnet-rnk net and init (the authors' train_val.prototxt)
    --prid-lr paper|authors     MTDnet PRID2011 base_lr (the authors' solver: 1e-4)
"""
import argparse
import os
import sys
from dataclasses import asdict

from common import cli, provenance
from data_prep.augment import COPIES
from experiments import recipes, stages
from experiments.recipes import Options
from layers.pair_generation import PAIRS
from networks import mtdnet as mtdnet_net
from networks import solver as schedules
from training.stage import Stopped


def build_parser():
    ap = cli.ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", nargs="*", help="e.g. geng16 table2, or mtdnet cuhk01 cross")
    ap.add_argument("--list", action="store_true", help="every experiment with the paper's numbers")
    ap.add_argument("--data-root", default=stages.DATA_ROOT)
    ap.add_argument("--run-dir", help="default runs/<experiment>")
    ap.add_argument("--scale", type=cli.positive_float, default=1.0,
                    help="iteration scale (1 = the paper's)")
    ap.add_argument("--trials", type=cli.positive_int, default=1,
                    help="random splits trained and averaged")
    ap.add_argument("--imagenet", help="ImageNet weights of the base (default: fetch bvlc_googlenet)")
    ap.add_argument("--caffenet", help="bvlc_reference_caffenet weights (default: fetch)")
    ap.add_argument("--augment", type=cli.nonnegative_int, default=COPIES,
                    help="augmented copies per training image")
    ap.add_argument("--k", type=cli.positive_int,
                    help="identities per Geng16 batch (default: the paper's 32)")
    ap.add_argument("--pairs", choices=PAIRS, default=Options.pairs,
                    help="Geng16 in-batch pairs: unordered (3,968 in all) or ordered (both "
                         "directions, 3,968 of each)")
    ap.add_argument("--step1-pv", action="store_true",
                    help="Geng16 step 1 also trains the new PV layers (the paper: the classifier alone)")
    ap.add_argument("--rnk-net", choices=mtdnet_net.RNK_NETS, default=Options.rnk_net,
                    help="MTDnet-rnk: ours (CaffeNet order, conv1-2 init) or the authors' "
                         "(AlexNet order, 0.1 biases, whole-CaffeNet init)")
    ap.add_argument("--prid-lr", choices=schedules.PRID_LRS, default=Options.prid_lr,
                    help="MTDnet PRID2011 base_lr: the paper's 1e-3 or the authors' solver's 1e-4")
    ap.add_argument("--snapshot-every", type=cli.positive_int, default=1000)
    ap.add_argument("--gpu", type=cli.nonnegative_int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--recompute", action="store_true",
                    help="remake the stages whose record differs from this run's settings "
                         "(without it such a stage is refused, never reused)")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    known = recipes.experiments()
    if args.list or not args.experiment:
        print(recipes.list_text(known))
        return 0
    key = " ".join(args.experiment)
    recipes.find(key, known)
    ctx = stages.Context(args.run_dir or stages.default_run_dir(key),
                         os.path.abspath(args.data_root), args.scale, args.gpu, args.seed,
                         snapshot_every=args.snapshot_every, k=args.k, recompute=args.recompute)
    opts = Options(args.trials, args.imagenet, args.caffenet, args.augment, args.pairs,
                   args.step1_pv, args.rnk_net, args.prid_lr)
    recipes.check_options(key, opts)
    # The reports written during the run record this command and its options.
    options = dict(vars(args), experiment=key, run_dir=ctx.run_dir, data_root=ctx.data_root,
                   **asdict(opts))
    del options["debug"], options["list"]
    try:
        with provenance.invocation("tools.reproduce", argv, options, ctx.run_dir, args.gpu):
            reports = recipes.reproduce(key, ctx, opts, known)
    except Stopped as stop:  # a stage's snapshot is saved and was said: no error line
        return stop.status
    for path in reports:
        with open(os.path.join(path, "results.md")) as f:
            print(f.read())
    for path in reports:   # the pages last (issue 15 §3)
        print("Page: %s" % os.path.join(path, "index.html"))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
