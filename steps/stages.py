"""The steps of one run directory, for the workflow's stages
(experiments/kinds/), the unsupervised study's rounds (unsupervised/) and
the quick check (experiments/quick_check.py). Each step is a function of
keyword arguments that writes one folder or file under the run directory,
whole or not at all, and is skipped when it is already there: rerunning
continues where it stopped (training steps resume from their last
snapshot, training/stage.py). What made a step's weights, features, scores
and reports is recorded with them (the weights' and data's SHA-1, the
nets, the options); an output made otherwise is refused, naming the first
difference, unless the context asks to `recompute` it.

    split      data_prep.make_split: the dataset's canonical split (merged:
               data_prep.merge_splits of several; single_shot: one query and
               gallery image per person)
    lmdb       data_prep.lmdb_builder: one subset of one trial
    geng16     training/two_step.py: one Geng16 transfer stage (two- or one-stepped)
    mtdnet     one MTDnet training stage (CaffeNet / previous-stage init)
    evaluate   features (evaluation/features.py) or CIR scores
               (evaluation/cir.py) → evaluation/evaluate.py's report
"""
import json
import os
from dataclasses import dataclass

import data_prep
from common import records
from common.atomic import write_text
from common.config import DATA_ROOT, MTDNET_INPUT
from common.layout import INDEX, RESULTS_JSON
from evaluation import cir, evaluate
from evaluation.cir import MTDNET_TESTS
from evaluation.features import extract_to_file
from networks import geng16 as geng16_net
from networks import mtdnet as mtdnet_net
from networks.geng16 import LMDB_SIZE as GENG16_LMDB
from training import mtdnet_init, surgery
from training.stage import train_stage
from training.two_step import INIT, NET, SOLVER, fine_tune, init_layers

# The feature each Geng16 base is evaluated with (§4.1: the base's output).
GENG16_BLOB = geng16_net.FEATURE


@dataclass
class Context:
    """Where a run's steps are written and how they run: `scale` multiplies
    every iteration count of the papers' schedules (1 = the paper's);
    `data_root` holds each dataset's extracted download as
    <data_root>/<dataset>/. Net settings (K, sizes) are the steps' own
    arguments, decided by their caller."""
    run_dir: str
    data_root: str = DATA_ROOT
    scale: float = 1.0
    gpu: int = None
    seed: int = None
    progress: bool = True
    snapshot_every: int = 1000
    recompute: bool = False  # remake outputs whose record differs instead of refusing

    def path(self, *parts):
        return os.path.join(self.run_dir, *parts)


def split(ctx, dataset, root=None, name=None, **protocol):
    """The split JSON of `dataset` (data_prep's parser; `protocol`: its
    options, e.g. version="detected"); root defaults to <data_root>/<dataset>."""
    out = ctx.path("data", (name or dataset) + ".json")
    if not os.path.isfile(out):
        data_prep.make_split(dataset, root or os.path.join(ctx.data_root, dataset), out, **protocol)
    return out


def merged(ctx, name, splits, eval_from=None):
    """A merge of several splits (Geng16 §5.3: CUHK03 + Market for the
    small sets), identities offset so none collide."""
    out = ctx.path("data", name + ".json")
    if not os.path.isfile(out):
        data_prep.merge_splits(list(splits), out, eval_from=eval_from)
    return out


def lmdb(ctx, split_path, subset, size, trial=0, augment=0):
    """LMDB of one subset of one trial of a split, images resized to size;
    an existing one is reused only when made from the same split file and
    settings (common.atomic.reuse: a differing one is refused unless
    ctx.recompute, which remakes it)."""
    from common.atomic import reuse
    from data_prep.lmdb_builder import KIND, build_lmdb, lmdb_record, split_sha1
    from data_prep.split_format import load_split
    # named after the split's place in the run (self-training and
    # co-training both have a round1.labels.json), or its file name
    rel = os.path.relpath(os.path.abspath(split_path), os.path.abspath(ctx.run_dir))
    rel = os.path.basename(split_path) if rel.startswith("..") else rel
    name = os.path.splitext(rel)[0].replace(os.sep, "_")
    out = ctx.path("data", "%s_t%d_%s_%dx%d%s.lmdb" % (name, trial, subset, size[0], size[1],
                                                       "_aug%d" % augment if augment else ""))
    record = lmdb_record(split_sha1(None, split_path), trial, subset, size[0], size[1], augment,
                         seed=trial)
    if not reuse(out, record, ctx.recompute, kind=KIND):
        build_lmdb(load_split(split_path), out, size[0], size[1], trial=trial, subset=subset,
                   augment=augment, seed=trial, split_path=split_path, verbose=ctx.progress)
    return out


def single_shot_split(split, trial=0, seed=0):
    """A copy of a split (a loaded split dict) whose trial `trial` keeps one
    query image per test person and one gallery image of that person from
    another camera (drawn with `seed`), distractors and junk dropped: the
    single-shot protocol of VIPeR-like sets on a multi-shot set, and a
    gallery small enough for MTDnet's CIR test (which scores every pair) on
    a CPU."""
    import copy
    import numpy as np
    split = copy.deepcopy(split)
    t = split["trials"][trial]
    images = split["images"]
    rng = np.random.RandomState(seed)
    query, gallery = [], []
    by_person = {}
    for g in t["gallery"]:
        by_person.setdefault(images[g]["pid"], []).append(g)
    for q in t["query"]:
        pid, cam = images[q]["pid"], images[q]["cam"]
        others = [g for g in by_person.get(pid, []) if images[g]["cam"] != cam]
        if pid < 1 or pid in {images[i]["pid"] for i in query} or not others:
            continue
        query.append(q)
        gallery.append(others[rng.randint(len(others))])
    t["query"], t["gallery"] = query, gallery
    t.pop("multi_query", None)
    return split


def single_shot(ctx, split_path, name, trial=0, seed=0):
    """single_shot_split of the split file `split_path`, as the split file
    ctx.path("data", name + ".json") (once per the split's content, trial
    and seed)."""
    from data_prep.split_format import load_split, save_split
    out = ctx.path("data", name + ".json")
    record = {"split": records.sha1(split_path), "trial": trial, "seed": seed}
    if records.reuse_file(out, record, ctx.recompute):
        return out
    save_split(single_shot_split(load_split(split_path), trial, seed), out)
    records.write_record(out, record)
    return out


def num_labels(lmdb_dir):
    """Classes N of a training LMDB (labels are contiguous from 0)."""
    with open(os.path.join(lmdb_dir, INDEX)) as f:
        return max(json.load(f)["label"]) + 1


def geng16(ctx, name, train_lmdb, weights=None, schedule="large", two_step=True, solver_kw=None,
           **net_kw):
    """One Geng16 transfer stage into ctx.path(name) (`schedule`: a key of
    netgen.geng16.SCHEDULES, or (step 1, step 2) iterations); returns its
    weights."""
    kw = dict(net_kw, num_ids=num_labels(train_lmdb), source=os.path.abspath(train_lmdb))
    iters = geng16_net.SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    return fine_tune(ctx.path(name), kw, weights, iters, two_step, ctx.scale,
                     name.replace("/", "_"), ctx.snapshot_every, ctx.gpu, ctx.seed, ctx.progress,
                     solver_kw, ctx.recompute)


def mtdnet(ctx, name, variant, train_lmdb, iters, caffenet=None, weights=None, aux_lmdb=None,
           solver_kw=None, **net_kw):
    """One MTDnet training stage (variant: a key of netgen.mtdnet.TRAIN_NETS)
    into ctx.path(name): init from CaffeNet conv1–2 and/or a previous stage by
    name (the cross net's source stream copied from the target); returns
    its weights."""
    kw = dict(net_kw, source=os.path.abspath(train_lmdb))
    if aux_lmdb:
        kw["aux_source"] = os.path.abspath(aux_lmdb)
    spec = mtdnet_net.TRAIN_NETS[variant](**kw)
    solver = mtdnet_net.solver(NET, iters, scale=ctx.scale, snapshot_prefix=variant,
                               **(solver_kw or {}))
    def build(net, out):
        mtdnet_init.build_init(net, out, caffenet, weights, seed=ctx.seed)
    return train(ctx, name, mtdnet_net.net_text(spec, variant), solver,
                 build if caffenet or weights else None, [w for w in (caffenet, weights) if w])


def train(ctx, name, net_text, solver_text, init=None, init_from=()):
    """A training stage in ctx.path(name) from generated text: the net and
    its solver (which names the net as NET) written there, the initial
    weights built by init(net path, out path) when given from the files
    `init_from` (once per their content and the net), then training/stage.py
    (resumed or skipped when done); returns its weights."""
    run = ctx.path(name)
    os.makedirs(run, exist_ok=True)
    net, solver = os.path.join(run, NET), os.path.join(run, SOLVER)
    write_text(net, net_text)
    write_text(solver, solver_text)
    weights = os.path.join(run, INIT) if init else None
    if init:
        record = {"from": [records.sha1(w) for w in init_from], "net": init_layers(net_text),
                  "seed": ctx.seed}
        if not records.reuse_file(weights, record, ctx.recompute):
            init(net, weights)
            records.write_record(weights, record)
    return train_stage(solver, run, weights, ctx.snapshot_every, ctx.gpu, ctx.seed, ctx.progress,
                       recompute=ctx.recompute)


def _inputs_record(argv):
    """An argument list with each file in it replaced by its SHA-1: what
    made an output from those files and options."""
    return [{"sha1": records.sha1(a)} if os.path.isfile(a) else a for a in argv]


def _report(ctx, name, **kw):
    """evaluation.evaluate.report(**kw) into ctx.path(name), once: its
    record is the report's tools.evaluate arguments (command_line) with each
    file replaced by its SHA-1."""
    out = ctx.path(name)
    record = {"evaluate": _inputs_record(evaluate.command_line(**kw))}
    if not (records.reuse_file(out, record, ctx.recompute)
            and os.path.isfile(os.path.join(out, RESULTS_JSON))):
        evaluate.report(out, **kw)
        records.write_record(out, record)
    return out


def extract(ctx, out, weights, split_path, base, subsets, trial=0, size=None, resize=None):
    """Features of the base's output (Geng16 SIR) of a split's subsets into
    `out` (once). `size`: the input the model was trained at (default: the
    base's); images are resized to `resize` (default: the training LMDB's
    size) and centre-cropped to it, as the data layer crops."""
    if size is None:
        resize = resize or GENG16_LMDB[base]
    deploy_text = geng16_net.net_text(geng16_net.deploy(base, size=size), base + "_deploy")
    # the record names the options as tools.extract_features's arguments
    options = ["--trial", str(trial), "--blob", GENG16_BLOB[base], "--subsets"] + list(subsets)
    options += ["--height", str(resize[0]), "--width", str(resize[1])] if resize else []
    record = {"weights": records.sha1(weights), "split": records.sha1(split_path),
              "deploy": deploy_text, "options": options}
    if records.reuse_file(out, record, ctx.recompute):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    deploy = out + ".deploy.prototxt"
    write_text(deploy, deploy_text)
    extract_to_file(out, deploy, weights, split_path, trial=trial, subsets=list(subsets),
                    blob=GENG16_BLOB[base], height=resize[0] if resize else None,
                    width=resize[1] if resize else None, gpu=ctx.gpu, progress=ctx.progress)
    print("wrote %s" % out)
    records.write_record(out, record)
    return out


def evaluate_geng16(ctx, name, models, split_path, base="googlenet", protocol="single-shot",
                    paper=None, subsets=("query", "gallery"), size=None, resize=None):
    """Features (see extract) of each trial's model, `models` = [(trial,
    weights)] → one report (mean ± std over trials) in ctx.path(name)."""
    files = [extract(ctx, ctx.path("%s.t%d.features.npz" % (name, trial)), weights, split_path,
                     base, subsets, trial, size, resize) for trial, weights in models]
    return _report(ctx, name, features=files, protocol=protocol, title=name, paper=paper)


def evaluate_mtdnet(ctx, name, weights, query_lmdb, gallery_lmdb, test="cir", paper=None,
                    size=None, passes=cir.PASSES):
    """MTDnet test (`test`: a key of MTDNET_TESTS) → single-shot report in
    ctx.path(name). The scores are kept beside the weights, per query set
    and test kind, so CIR and -trp of one model share one scoring run."""
    key, feature = MTDNET_TESTS[test]
    if test == "cir" and cir.RANKING_LAYER not in surgery.read_blobs(weights):
        feature = None  # a classification-only model (MTDnet-cls) has no ranking feature to share
    # the file name and the record name the options as tools.mtdnet_cir's arguments
    flags = ["--" + feature] if feature else []
    scores = os.path.join(os.path.dirname(weights), "%s%s.p%d.scores.npz" % (
        os.path.basename(os.path.normpath(query_lmdb)), "".join(flags), passes))
    options = ["--passes", str(passes)] + flags + (["--size", str(size)] if size else [])
    record = {"weights": records.sha1(weights), "options": options,
              "query": records.sha1(os.path.join(query_lmdb, INDEX)),
              "gallery": records.sha1(os.path.join(gallery_lmdb, INDEX))}
    if not records.reuse_file(scores, record, ctx.recompute):
        result = cir.score_to_file(weights, query_lmdb, gallery_lmdb, scores,
                                   size=size or MTDNET_INPUT, passes=passes,
                                   trp=feature == "trp", rnk=feature == "rnk", gpu=ctx.gpu)
        for line in cir.summary(result):
            print(line)
        records.write_record(scores, record)
    return _report(ctx, name, matrix=scores, key=key, protocol="single-shot", title=name,
                   similarity=test == "cir", paper=paper)
