"""One command per experiment of the two papers (docs/reproducing.md):

    python -m tools.reproduce --list
    python -m tools.reproduce --plan all
    python -m tools.reproduce geng16 table2 --data-root /data/reid
    python -m tools.reproduce geng16 table4 sid_tl, geng16 table4 sid_pv --scale 0.01 --cores 2
    python -m tools.reproduce mtdnet cuhk01 cross --trials 10 --gpu 0 --executor slurm --jobs 20

Every experiment is a target of one Snakemake workflow (experiments/
Snakefile): data preparation, each training stage (staged transfer,
two-stepped unless the row says otherwise), feature extraction or CIR
scoring, and the report beside the paper's numbers (results.md,
results.json, cmc.png, index.html). A stage's folder under --run-dir
(default runs/) is named after its whole configuration, so experiments
that share a stage (Tables 2, 4, 5 and 8 share ImageNet → Market SID + PV;
every small set starts from ImageNet → CUHK03 + Market) train it once;
Snakemake reruns what a change of options, inputs or code affects, and an
interrupted training resumes from its last snapshot. Several experiments
are separated by commas; `all` is every one. `--plan` prints the distinct
stages and the training they cost, shared and as one run directory per
experiment would train them, before anything runs.

Datasets are read from <data-root>/<name>/ (market1501, cuhk03, viper,
prid2011, cuhk01, ilids) as distributed (docs/reproducing.md). ImageNet and
CaffeNet weights come from the model zoo (training/fetch_weights.py) or
--imagenet / --caffenet. `--scale` shrinks every schedule (1 = the paper's
iterations); `--trials` is how many of a dataset's random splits are
trained and averaged (the papers: all 10 of the small sets, 20 of CUHK03).

Fidelity choices (docs/reproducing.md, "Fidelity choices"), each defaulting to the
paper's reading; a stage made under another reading is another stage:
    --pairs unordered|ordered   Geng16 in-batch pairs (§5.2's "3,968 … respectively")
    --step1-pv                  Geng16 step 1 also trains the new PV layers
    --rnk-net ours|authors      MTDnet-rnk net and init (the authors' train_val.prototxt)
    --prid-lr paper|authors     MTDnet PRID2011 base_lr (the authors' solver: 1e-4)
"""
import argparse
import os
import sys
from dataclasses import asdict, fields

from common import cli, provenance
from common.config import DATA_ROOT, RUNS_ROOT
from common.layout import PAGE, RESULTS_MD
from data_prep.augment import COPIES
from experiments import causes, recipes, store as stores, workflow
from experiments.arithmetic import add_arithmetic_options
from experiments.plan import plan_text
from layers.pair_generation import PAIRS
from networks import mtdnet as mtdnet_net
from networks import solver as schedules


def experiment_keys(words, known):
    """The experiments named by the words: keys separated by commas, or `all`."""
    text = " ".join(words)
    if text.strip() == "all":
        return list(known)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    for key in keys:
        recipes.find(key, known)
    return list(dict.fromkeys(keys))


def check_inputs(graph):
    """The datasets and weights files the stages read exist: refused here,
    in one line, not in a job."""
    for stage in graph.by_id.values():
        for name, given in stage.external().items():
            if given.path == recipes.NO_DGDNET_IMAGENET:
                raise ValueError(recipes.NO_DGDNET_IMAGENET_TEXT)
            if not os.path.exists(given.path):
                what = "dataset folder" if stage.kind == "split" else "file"
                raise FileNotFoundError("%s not found: %s (stage %s)" % (what, given.path,
                                                                       stage.path))


def executor_options(pairs):
    """--slurm KEY=VALUE pairs as the Slurm plugin's settings."""
    from snakemake_executor_plugin_slurm import ExecutorSettings
    known = {f.name: f for f in fields(ExecutorSettings)}
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise cli.InputError("--slurm %s: give KEY=VALUE with KEY one of %s"
                                 % (pair, ", ".join(sorted(known))))
        default = known[key].default
        if isinstance(default, bool):
            value = value.lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            value = int(value)
        out[key] = value
    return out


def build_parser():
    ap = cli.ArgumentParser(
        prog="python -m tools.reproduce", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="One command per experiment of the two papers (docs/reproducing.md): the\n"
                    "stages it needs (split, LMDBs, training, features or CIR scores, report)\n"
                    "run once each through the experiments' Snakemake workflow, in the store\n"
                    "--run-dir (default runs/). Reads the datasets as distributed under\n"
                    "--data-root/<name>/; prints each report, the paper's row beside ours, and,\n"
                    "last, the path of its page.",
        epilog="examples:\n"
               "  python -m tools.reproduce --list\n"
               "  python -m tools.reproduce --plan geng16 table2\n"
               "  python -m tools.reproduce geng16 table2 --data-root /data/reid --gpu 0")
    ap.add_argument("experiment", nargs="*",
                    help="e.g. geng16 table2, or mtdnet cuhk01 cross; several separated by "
                         "commas; all")
    ap.add_argument("--list", action="store_true", help="every experiment with the paper's numbers")
    ap.add_argument("--plan", action="store_true",
                    help="print the distinct stages and their training cost, run nothing")
    ap.add_argument("--rulegraph", action="store_true",
                    help="print the workflow's rule graph (Snakemake's --rulegraph, DOT), run "
                         "nothing")
    ap.add_argument("--data-root", default=DATA_ROOT)
    ap.add_argument("--verify-data", action="store_true",
                    help="hash every dataset file's content, even where the store knows its "
                         "listing (size and time): finds an image rewritten with both kept")
    ap.add_argument("--run-dir", default=RUNS_ROOT,
                    help="the stages' store, shared by every experiment (default runs/)")
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
    ap.add_argument("--pairs", choices=PAIRS, default=recipes.Options.pairs,
                    help="Geng16 in-batch pairs: unordered (3,968 in all) or ordered (both "
                         "directions, 3,968 of each)")
    ap.add_argument("--step1-pv", action="store_true",
                    help="Geng16 step 1 also trains the new PV layers (the paper: the classifier alone)")
    ap.add_argument("--rnk-net", choices=mtdnet_net.RNK_NETS, default=recipes.Options.rnk_net,
                    help="MTDnet-rnk: ours (CaffeNet order, conv1-2 init) or the authors' "
                         "(AlexNet order, 0.1 biases, whole-CaffeNet init)")
    ap.add_argument("--prid-lr", choices=schedules.PRID_LRS, default=recipes.Options.prid_lr,
                    help="MTDnet PRID2011 base_lr: the paper's 1e-3 or the authors' solver's 1e-4")
    ap.add_argument("--snapshot-every", type=cli.positive_int, default=1000)
    ap.add_argument("--gpu", type=cli.nonnegative_int,
                    help="GPU of each job (on Slurm: each job asks for one; give 0, the first "
                         "of its own)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--cores", type=cli.positive_int, default=1,
                    help="jobs at once on this machine (local executor)")
    ap.add_argument("--executor", choices=workflow.EXECUTORS,
                    help="where the jobs run (default: the profile's, else local)")
    ap.add_argument("--jobs", type=cli.positive_int,
                    help="jobs submitted at once on a cluster (default: the profile's, else 8)")
    ap.add_argument("--profile", metavar="DIR",
                    help="a Snakemake profile (config.yaml: executor, jobs, slurm-* settings, "
                         "default-resources), e.g. cluster/slurm")
    ap.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of snakemake-executor-plugin-slurm, e.g. status_command=squeue")
    add_arithmetic_options(ap)
    ap.add_argument("--verbose", action="store_true",
                    help="show Snakemake's block for every job (otherwise in its log file, "
                         "<run-dir>/.snakemake/log/)")
    ap.add_argument("--recompute", action="store_true",
                    help="rerun every stage of these experiments, even those up to date")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    known = recipes.experiments()
    if args.list or not args.experiment:
        print(recipes.list_text(known))
        return 0
    keys = experiment_keys(args.experiment, known)
    store = os.path.abspath(args.run_dir)
    opts = recipes.Options(args.trials, args.imagenet and os.path.abspath(args.imagenet),
                           args.caffenet and os.path.abspath(args.caffenet), args.augment,
                           args.pairs, args.step1_pv, args.rnk_net, args.prid_lr)
    # the store's cache of dataset fingerprints, once the store is ours
    ours = os.path.isfile(os.path.join(store, stores.MARK))
    options = dict(asdict(opts), data_root=os.path.abspath(args.data_root), scale=args.scale,
                   k=args.k, seed=args.seed, verify_data=args.verify_data,
                   data_cache=os.path.join(store, stores.DATA_CACHE) if ours else None)
    config = {"experiments": keys, "options": options,
              "run": {"gpu": args.gpu, "snapshot_every": args.snapshot_every, "progress": True,
                      "blas_threads": args.blas_threads, "cpu_kernels": args.cpu_kernels}}
    graph = recipes.graph(config)
    if args.plan:
        decisions = causes.decide(store, graph)
        print(plan_text(graph, status={d.stage.id: causes.describe(d) for d in decisions}))
        print("In %s: %s" % (store, "\n".join(causes.summary(decisions))))
        return 0
    if args.rulegraph:
        sys.stdout.write(workflow.rulegraph(graph))
        return 0
    check_inputs(graph)
    run = workflow.load_profile(args.profile) if args.profile else {}
    run.setdefault("executor", "local")
    run.setdefault("jobs_at_once", 8)
    for name, value in (("executor", args.executor), ("jobs_at_once", args.jobs)):
        if value is not None:
            run[name] = value
    if run["executor"] == "slurm":
        run["executor_options"] = dict(run.get("executor_options", {}),
                                       **executor_options(args.slurm))
    elif args.slurm:
        raise cli.InputError("--slurm is for --executor slurm")
    recorded = dict(vars(args), experiment=keys, run_dir=store)
    del recorded["debug"], recorded["list"], recorded["plan"], recorded["rulegraph"]
    with provenance.invocation("tools.reproduce", argv, recorded, store, args.gpu) as record:
        workflow.execute(store, graph, invocation=record, cores=args.cores,
                         forceall=args.recompute, verbose=args.verbose, **run)
    reports = [os.path.join(store, path) for path in graph.targets()]
    for path in reports:
        with open(os.path.join(path, RESULTS_MD)) as f:
            print(f.read())
    for path in reports:   # the pages last, where a terminal leaves them in view
        print("Page: %s" % os.path.join(path, PAGE))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
