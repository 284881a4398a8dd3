"""Check an install and a dataset copy on a CPU before spending GPU-days
(`check`, what `python -m tools.quick_check DATASET ROOT` runs):

1. parses the set (data_prep's parser for DATASET, as distributed under ROOT);
2. trains Geng16's Table 8 "no ImageNet" recipe on the first trial's
   training identities: DGDNet from the fillers, SID + PV losses with
   pairwise-consistent dropout, one-stepped, at the CPU-sized schedule below;
3. evaluates the base's output (fc7) with the set's own protocol: Market's
   rule for Market-1501 (and the synthetic set in its layout), single-shot
   CMC for CUHK03, CUHK01, VIPeR, PRID2011 and i-LIDS;
4. prints rank-1 beside chance (a random ranking, by hand for that gallery)
   and beside the range measured here (EXPECTED), and exits 1 when outside
   it. A set with no measured range, or another --scale, is held to the
   demo's rule instead: rank-1 at least experiments.demo.CLEAR_MARGIN x chance.

Everything lands in the run directory (the command's default
runs/quick_check/<dataset>[_<protocol>]); a rerun reuses what is done. The numbers are a smoke test of the pipeline on
real images, not the paper's: the schedule is a few minutes of CPU.
"""
import json
import os
import time

import numpy as np

from data_prep.prepare import DATASETS
from common.layout import RESULTS_JSON
from evaluation.features import load_features
from steps import stages as ex
from experiments.demo import CLEAR_MARGIN, chance_rank1

# The CPU-sized schedule (Geng16 §5.2's recipe, shrunk): DGDNet at half its
# input side (the demo's, a quarter of the cost), K = 16 identities x M = 2
# images per batch (the paper's 32 halved), 200 iterations from the fillers
# at the demo's from-scratch base_lr (the paper's 0.001 fine-tunes ImageNet
# weights). One iteration: about 3.8 s on one core of a 2-core AMD EPYC;
# the whole check on CUHK01 in docs/results.md, "Quick check on CUHK01".
BASE = "dgdnet"
INPUT = (72, 28)
LMDB_SIZE = (80, 32)      # the margin of the data layer's random crop
K = 16
ITERS = 200
BASE_LR = 0.01
SEED = 0                  # Caffe's fillers and the data order (--seed)
TRIAL = 0                 # the set's first trial

DATASET_CHOICES = DATASETS   # every parser's (data_prep.prepare)
# The protocol each set is evaluated with (Geng16 Tables 1-3; docs/evaluation.md).
PROTOCOL = {"market1501": "market", "synthetic": "market"}   # every other set: single-shot

# Rank-1 measured here at scale 1 on the first trial: (dataset, parser
# protocol) -> rank-1 of seeds 0, 1, ...; a 2-core AMD EPYC shared with other
# jobs (OpenBLAS one thread), 2026-12-01 (docs/results.md, "Quick check on
# CUHK01": chance, minutes). Only sets measured here are listed.
# chance 0.21 %; 22.9 min (half of it under load 7), 10.3 min
MEASURED = {("cuhk01", "485/486"): [0.0185, 0.0473],
            # chance 1.00 %; 9.8 min, 9.7 min
            ("cuhk01", "871/100"): [0.0290, 0.0985]}
# The range a check must fall in: from the lowest measured figure divided by
# RANGE_FACTOR to the highest times it. Few seeds were measured; below that
# the install or the copy learns far worse than here, above it the test
# identities probably leak into training. A judgement, not a statistic:
# narrow it when more seeds are measured.
RANGE_FACTOR = 2.0
EXPECTED = {key: (min(r) / RANGE_FACTOR, min(1.0, max(r) * RANGE_FACTOR))
            for key, r in MEASURED.items()}


def chance_single_shot(features_file):
    """Expected rank-1 of a random ranking under the single-shot rule: per
    probe, 1 / (identities with an image in another camera), 0 for a probe
    whose identity has none (it counts as a miss)."""
    subsets, _ = load_features(features_file)
    q, g = subsets["query"], subsets["gallery"]
    rates = []
    for pid, cam in zip(q["pids"], q["cams"]):
        other = g["cams"] != cam
        ids = set(g["pids"][other].tolist())
        rates.append((pid in ids) / float(max(len(ids), 1)))
    return float(np.mean(rates))


def parser_default(dataset):
    """The protocol the dataset's parser uses when none is given (None if it has none)."""
    import importlib
    import inspect
    module = importlib.import_module("data_prep." + ("market1501" if dataset == "synthetic"
                                                     else dataset))
    param = inspect.signature(module.parse).parameters.get("protocol")
    return param.default if param is not None else None


def verdict(rank1, chance, expected=None):
    """(ok, text): within the measured range (low, high) when there is one,
    otherwise at least CLEAR_MARGIN x chance."""
    if expected is not None:
        low, high = expected[:2]
        ok = low <= rank1 <= high
        return ok, "%s the range measured here, %.1f-%.1f%%" % (
            "within" if ok else "OUTSIDE", 100 * low, 100 * high)
    ok = rank1 >= CLEAR_MARGIN * chance
    return ok, "no range measured here for this setting; %s %g x chance (%.2f%%)" % (
        "at least" if ok else "BELOW", CLEAR_MARGIN, 100 * CLEAR_MARGIN * chance)


def check(dataset, root, run_dir, protocol=None, version=None, scale=1.0, progress=True,
          seed=SEED):
    """Parse, train, evaluate; returns the result dict (also results of the
    report in run_dir/report)."""
    start = time.time()
    ctx = ex.Context(run_dir, seed=seed, progress=progress, scale=scale)
    options = {k: v for k, v in (("protocol", protocol), ("version", version)) if v is not None}
    split = ex.split(ctx, dataset, root=root, name=dataset, **options)
    train = ex.lmdb(ctx, split, "train", LMDB_SIZE, trial=TRIAL)
    weights = ex.geng16(ctx, "geng16", train, None, (0, ITERS), two_step=False,
                        solver_kw=dict(base_lr=BASE_LR), base=BASE, k=K, size=INPUT)
    evaluation = PROTOCOL.get(dataset, "single-shot")
    report = ex.evaluate_geng16(ctx, "report", [(TRIAL, weights)], split, BASE, evaluation,
                                size=INPUT, resize=LMDB_SIZE)
    with open(os.path.join(report, RESULTS_JSON)) as f:
        rank1 = json.load(f)["results"][0]["cmc"][0]
    features = ctx.path("report.t%d.features.npz" % TRIAL)
    chance = (chance_rank1 if evaluation == "market" else chance_single_shot)(features)
    key = (dataset, protocol or version or parser_default(dataset))
    expected = EXPECTED.get(key) if scale == 1.0 else None
    ok, text = verdict(rank1, chance, expected)
    return {"dataset": dataset, "setting": key[1], "evaluation": evaluation, "rank1": rank1,
            "chance": chance, "expected": expected, "ok": ok, "verdict": text,
            "iterations": int(round(ITERS * scale)), "minutes": (time.time() - start) / 60,
            "report": report}



def result_line(res):
    """The command's line of check's result: rank-1 beside chance and the verdict."""
    return ("%s (%s, %s evaluation, %d iterations, %.1f min): rank-1 %.2f%%, chance %.2f%% "
            "(%.1f x); %s" % (res["dataset"], res["setting"] or "default protocol",
                              res["evaluation"], res["iterations"], res["minutes"],
                              100 * res["rank1"], 100 * res["chance"],
                              res["rank1"] / res["chance"], res["verdict"]))
