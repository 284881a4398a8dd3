"""The README's main job (`make demo`, `python -m tools.demo`): both papers'
pipelines end to end on synthetic data in Market-1501's layout, on a CPU,
no download:

1. data: two synthetic sets (data_prep/synthetic.py) parsed as Market-1501
   and written to LMDBs — a *source* set standing in for the large
   pretraining set, and the *target* set (train / query / gallery);
2. Geng16 staged transfer (§4.1) with the small base (DGDNet, Table 8):
   source set from the fillers (one-stepped, Table 8's "no ImageNet"), then
   two-stepped fine-tuning on the target (step 1 the new classifier alone,
   step 2 all layers), SID + PV losses, pairwise-consistent dropout;
3. features of the base's output → Market's evaluation (single query), for
   the source model alone and for the fine-tuned one;
4. MTDnet (multi-task: triplet ranking + pair classification) trained on
   the target, tested by CIR pair scoring and by its ranking feature (-trp);
5. one report (results.md / results.json / cmc.png) beside chance level,
   and its page report/index.html: ranked lists of each evaluation, the
   training curves and net of every stage, the provenance (issue 15).

Everything lands in the run directory (`run(run_dir)`; the command's
default runs/demo); a rerun skips what is done and
resumes an interrupted stage. Sizes and iteration counts are the demo's own
(below): they fit 2 CPU cores in under 15 minutes, so the numbers are far
from the papers'. The networks, layers, losses and schedules' shapes are
the papers'.
"""
import json
import os
import time

import numpy as np

from common import cli, provenance
from experiments import stages as ex
from evaluation.report import write_report
from evaluation.features import load_features

SOURCE = dict(num_ids=60, seed=1)     # the stand-in pretraining set
TARGET = dict(num_ids=200, seed=0)    # 100 train / 100 test identities (generator's halves)
BASE = "dgdnet"
# DGDNet at half its input side (Xiao et al.'s 144 × 56): a quarter of the
# cost, which is what lets 2 cores train it in minutes; LMDB images keep the
# same margin for the random crop as at full size.
INPUT = (72, 28)
LMDB_SIZE = (80, 32)
K = 16                                # identities per batch (the paper's 32 halved for 2 cores)
PRETRAIN_ITERS = (0, 150)             # one-stepped from the fillers
FINETUNE_ITERS = (30, 90)             # two-stepped: step 1, step 2
# From the fillers in a few hundred iterations needs more than the paper's
# 0.001 (which fine-tunes from ImageNet weights).
PRETRAIN_LR = 0.01
FINETUNE_LR = 0.003
MTDNET_SIZE = 96                      # input side (the papers' 227 / 224 cost too much here)
MTDNET_BATCH = 16                     # triplets per batch (authors: 128)
MTDNET_ITERS = 150
MTDNET_LR = 0.01
SEED = 0                              # Caffe's fillers and data order: a rerun is the same run
MTDNET_PASSES = 2                     # CIR: both orders (the authors' 8 add flips)
# MTDnet is tested single-shot (one query and one gallery image per test
# person, experiments/stages.single_shot): CIR scores every pair through
# conv3 … fc8, about 150 pairs/s here, so Market's 439 × 1,015 would take
# most of an hour.
# The demo fails (exit 1, one line naming the figure) instead of reporting a
# model that learned nothing: Geng16's and MTDnet's ranking-feature (-trp)
# rank-1 must reach CLEAR_MARGIN x their chance level. Measured (seed 0):
# Geng16 40-46 % against 0.79 % chance (51-58 x), MTDnet-trp 24 % against
# 1 % (24 x). A random ranking's rank-1 has a standard deviation of about
# 0.45 % over Geng16's ~400 Market queries and 1 % over MTDnet's 100
# single-shot ones, so 4 x chance is at least 3 standard deviations above
# what luck gives. CIR is reported, not judged: 150 iterations from Gaussian
# weights barely move the pair classifier (its loss stays near ln 2), and its
# rank-1 was 2, 8 and 20 % on three runs of the same seed on different CPUs.
CLEAR_MARGIN = 4.0


def chance_rank1(features_file):
    """Expected rank-1 of a random ranking under Market's rule: for each
    query with a match, (good images) / (good + other non-junk images)."""
    subsets, _ = load_features(features_file)
    q, g = subsets["query"], subsets["gallery"]
    rates = []
    for pid, cam in zip(q["pids"], q["cams"]):
        junk = (g["pids"] == -1) | ((g["pids"] == pid) & (g["cams"] == cam))
        good = (g["pids"] == pid) & ~junk
        if good.any():
            rates.append(good.sum() / float((~junk).sum()))
    return float(np.mean(rates))


def check_above_chance(figure, rank1, chance, margin=CLEAR_MARGIN):
    """Raise cli.Failure naming `figure` unless rank1 >= margin x chance."""
    if not rank1 >= margin * chance:
        raise cli.Failure("%s: rank-1 %.2f%% is not clearly above chance %.2f%% (the demo needs "
                          "%g x chance, %.2f%%); not reporting success"
                          % (figure, 100 * rank1, 100 * chance, margin, 100 * margin * chance))


def _rows(report_dir, label):
    """The result rows of one report, named after their model; the paper's
    row is kept where the report had one."""
    with open(os.path.join(report_dir, "results.json")) as f:
        rows = json.load(f)["results"]
    for row in rows:
        row["name"] = "%s, %s" % (label, row["name"])
    return rows


def settings():
    """The demo's own sizes, schedules and seed: the options its report records."""
    return {"source": SOURCE, "target": TARGET, "base": BASE, "input": INPUT, "lmdb_size": LMDB_SIZE,
            "k": K, "seed": SEED, "iterations": {"pretrain": PRETRAIN_ITERS,
                                                 "finetune": FINETUNE_ITERS, "mtdnet": MTDNET_ITERS},
            "base_lr": {"pretrain": PRETRAIN_LR, "finetune": FINETUNE_LR, "mtdnet": MTDNET_LR},
            "mtdnet": {"size": MTDNET_SIZE, "batch": MTDNET_BATCH, "passes": MTDNET_PASSES}}


def data(ctx):
    """(source split, target split) of the two synthetic sets."""
    source = ex.split(ctx, "synthetic", root=ctx.path("synthetic", "source"), name="source",
                      **SOURCE)
    target = ex.split(ctx, "synthetic", root=ctx.path("synthetic", "target"), name="target",
                      **TARGET)
    return source, target


def source_model(ctx, source):
    """Geng16 on the source set from the fillers, one-stepped."""
    return ex.geng16(ctx, "geng16_source", ex.lmdb(ctx, source, "train", LMDB_SIZE), None,
                     PRETRAIN_ITERS, two_step=False, solver_kw=dict(base_lr=PRETRAIN_LR),
                     base=BASE, k=K, size=INPUT)


def _context(run_dir, progress, recompute=False):
    return ex.Context(run_dir, data_root=os.path.join(run_dir, "synthetic"), seed=SEED,
                      progress=progress, recompute=recompute)


def run(run_dir, progress=True, recompute=False):
    start = time.time()
    ctx = _context(run_dir, progress, recompute)
    source, target = data(ctx)
    pretrained = source_model(ctx, source)
    tuned = ex.geng16(ctx, "geng16_target", ex.lmdb(ctx, target, "train", LMDB_SIZE), pretrained,
                      FINETUNE_ITERS, two_step=True, solver_kw=dict(base_lr=FINETUNE_LR),
                      base=BASE, k=K, size=INPUT)
    paper = "geng16:table8:Market / DGDNet / SID + PV / NO"
    before = ex.evaluate_geng16(ctx, "eval_source_model", [(0, pretrained)], target, BASE,
                                "market", size=INPUT, resize=LMDB_SIZE)
    after = ex.evaluate_geng16(ctx, "eval_geng16", [(0, tuned)], target, BASE, "market", paper,
                               size=INPUT, resize=LMDB_SIZE)

    mt_size = ex.MTDNET_LMDB
    mtdnet = ex.mtdnet(ctx, "mtdnet_target", "mtdnet", ex.lmdb(ctx, target, "train", mt_size),
                       MTDNET_ITERS, size=MTDNET_SIZE, batch=MTDNET_BATCH,
                       solver_kw=dict(base_lr=MTDNET_LR))
    shot = ex.single_shot(ctx, target, "target_single_shot")
    query, gallery = ex.lmdb(ctx, shot, "query", mt_size), ex.lmdb(ctx, shot, "gallery", mt_size)
    cir = ex.evaluate_mtdnet(ctx, "eval_mtdnet_cir", mtdnet, query, gallery, "cir", None,
                             MTDNET_SIZE, MTDNET_PASSES)
    trp = ex.evaluate_mtdnet(ctx, "eval_mtdnet_trp", mtdnet, query, gallery, "trp", None,
                             MTDNET_SIZE, MTDNET_PASSES)

    rows = (_rows(before, "Geng16 source model only") + _rows(after, "Geng16 DGDNet two-stepped")
            + _rows(cir, "MTDnet CIR") + _rows(trp, "MTDnet-trp"))
    chance = chance_rank1(ctx.path("eval_geng16.t0.features.npz"))
    meta = {"chance_rank1": chance, "settings": settings()}
    paths = write_report(ctx.path("report"), rows, "Demo: synthetic Market-layout target", meta,
                         provenance.gather(run_dir=run_dir),
                         ranked_from=[("Geng16 source model only", before),
                                      ("Geng16 DGDNet two-stepped", after),
                                      ("MTDnet CIR", cir), ("MTDnet-trp", trp)])
    rank1 = next(r["cmc"][0] for r in rows if r["name"] == "Geng16 DGDNet two-stepped, single query")
    _show(paths, start, [
        "Chance rank-1 (random ranking, Market rule): %.2f%%. Geng16 rank-1: %.2f%% = %.1f x chance."
        % (100 * chance, 100 * rank1, rank1 / chance),
        "MTDnet is scored single-shot (its papers' protocol). The paper row is Geng16's "
        "real-data result for the same network and losses, for orientation only."])
    check_above_chance("Geng16 DGDNet two-stepped, single query", rank1, chance)
    with open(shot) as f:  # single-shot: one gallery image per query person
        mt_chance = 1.0 / len(json.load(f)["trials"][0]["gallery"])
    mt_rank1 = next(r["cmc"][0] for r in rows if r["name"].startswith("MTDnet-trp"))
    check_above_chance("MTDnet-trp", mt_rank1, mt_chance)
    return paths


def unsupervised(run_dir, progress=True, recompute=False):
    """Geng16 §4.2 on the synthetic target without its labels: every
    Table 9 model from the demo's source model (unsupervised/study.py)."""
    from unsupervised import study
    start = time.time()
    ctx = _context(run_dir, progress, recompute)
    source, target = data(ctx)
    weights = source_model(ctx, source)
    uctx = ex.Context(os.path.join(run_dir, "unsupervised"), seed=SEED, progress=progress,
                      recompute=recompute)
    setup = study.Setup(base=BASE, iters=FINETUNE_ITERS, protocol="market", size=INPUT,
                        lmdb_size=LMDB_SIZE, solver_kw=dict(base_lr=FINETUNE_LR), k=K)
    paths, _ = study.run(uctx, weights, source, target, setup,
                         title="Demo: unsupervised transfer to the synthetic target")
    _show(paths, start)
    return paths


def _show(paths, start, notes=()):
    """Print a report's table, any notes, and where it is: its page last."""
    with open(paths["results.md"]) as f:
        print(f.read())
    for line in notes:
        print(line)
    print("Report: %s (CMC plot: %s); %.1f min." % (paths["results.md"], paths["cmc.png"],
                                                    (time.time() - start) / 60))
    print("Page: %s" % paths["index.html"])

