"""The demo (`make demo`; docs/teaching.md): both papers' pipelines end to end on
synthetic data in Market-1501's layout, on a CPU, no download.

Two synthetic sets, Geng16's staged transfer with the DGDNet base
(two-stepped fine-tuning on the target), MTDnet on the target, for each of
--seeds; one report of their mean ± std beside chance level and its page
(experiments/demo.py `stages`); with
--unsupervised, Geng16's unsupervised transfer instead
(`unsupervised_stages`). They run as stages of the experiments' Snakemake
workflow in runs/demo (--run-dir): a rerun does only what changed and
resumes an interrupted training; every job on --blas-threads OpenBLAS
threads, --cpu-kernels haswell pinning the kernels (experiments/workflow.py
`arithmetic`). A model that learned nothing ends in one error line, exit 1,
after the report is written.
"""
import argparse
import os
import sys
import time
from dataclasses import asdict

from common import cli, provenance
from common.config import RUNS_ROOT
from common.layout import CMC_PNG, PAGE, RESULTS_MD
from experiments import demo, kinds, recipes, workflow
from experiments.arithmetic import add_arithmetic_options


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.demo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Both papers' pipelines end to end on synthetic pedestrians in Market-1501's\n"
                    "layout, on a CPU, with no download (docs/teaching.md). Every stage and the\n"
                    "report go into --run-dir (default runs/demo); prints the report and, last,\n"
                    "the path of its page (report/demo-<hash>/index.html).",
        epilog="examples:\n  python -m tools.demo\n  python -m tools.demo --unsupervised")
    ap.add_argument("--run-dir", default=os.path.join(RUNS_ROOT, "demo"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--unsupervised", action="store_true",
                    help="instead: Geng16's unsupervised transfer (Tables 7, 9) on the synthetic "
                         "target, every model side by side")
    ap.add_argument("--cores", type=cli.positive_int, default=len(os.sched_getaffinity(0)),
                    help="jobs at once (default: one per core; each seed's trainings run side "
                         "by side, each on one BLAS thread)")
    ap.add_argument("--seeds", type=cli.seed_list,
                    help="training seeds, each a run of its own on the same data; the report "
                         "is their mean ± std (default: %s)" % ",".join(map(str, demo.SEEDS)))
    ap.add_argument("--settings", metavar="JSON",
                    help="a JSON object of some of the demo's sizes and schedules "
                         "(experiments/demo.py Settings: k, finetune_iters, target, …), the "
                         "others at their defaults: a smaller demo for a lesson or a test")
    add_arithmetic_options(ap)
    ap.add_argument("--verbose", action="store_true",
                    help="show Snakemake's block for every job (otherwise in its log file, "
                         "<run-dir>/.snakemake/log/)")
    ap.add_argument("--recompute", action="store_true",
                    help="rerun every stage, even those up to date")
    args = ap.parse_args(argv)
    start = time.time()
    store = os.path.abspath(args.run_dir)
    settings = (demo.settings_from(args.settings, seeds=args.seeds) if args.settings
                else demo.Settings(seeds=args.seeds or demo.SEEDS))
    key = "demo unsupervised" if args.unsupervised else "demo"
    config = {"experiments": [key], "options": {"data_root": store},
              "demo": asdict(settings),
              "run": {"gpu": None, "snapshot_every": 1000, "progress": not args.no_progress,
                      "blas_threads": args.blas_threads, "cpu_kernels": args.cpu_kernels}}
    graph = recipes.graph(config)
    recorded = dict(vars(args), run_dir=store)
    recorded.update(asdict(settings))
    del recorded["debug"]
    with provenance.invocation("tools.demo", argv, recorded, store) as record:
        workflow.execute(store, graph, invocation=record, cores=args.cores,
                         forceall=args.recompute, verbose=args.verbose)
    (report,) = graph.experiments[key]
    folder = os.path.join(store, report.path)
    with open(os.path.join(folder, RESULTS_MD)) as f:
        print(f.read())
    checks = []
    if not args.unsupervised:
        notes, checks = demo.judge(folder, kinds.main_file("single_shot", os.path.join(
            store, report.inputs["shot"].path)))
        for line in notes:
            print(line)
    print("Report: %s (CMC plot: %s); %.1f min." % (
        os.path.join(folder, RESULTS_MD), os.path.join(folder, CMC_PNG),
        (time.time() - start) / 60))
    print("Page: %s" % os.path.join(folder, PAGE))
    for figure, rank1, chance in checks:
        demo.check_above_chance(figure, rank1, chance)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
