"""Unsupervised transfer to an unlabelled target set, every model of Geng16
Tables 7 and 9 side by side (§5.4, §5.6):

    source          the supervised source model alone, no adaptation
    self_training   soft-label self-training (§4.2)
    subspace        the graph-regularised subspace model on the source
                    model's features of the test images (its codes Z rank)
    ae              an autoencoder on the base features, pretrained on the
                    source set and trained on the target (Eq. 4)
    adversarial     a gradient-reversal domain classifier on the base (Ganin
                    & Lempitsky [9])
    co_training     the paper's model (§4.2): self-training with the
                    subspace model's soft labels, 2–3 rounds

Every row is a features file in evaluation/features.py's format (the
subspace and AE rows hold their codes), evaluated by evaluation/evaluate.py; the
report puts the paper's Table 9 (or 7) row beside each. The target's
identities are read only by the evaluation.
"""
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from common import records
from common.atomic import write_text
from common.layout import RESULTS_JSON
from data_prep.split_format import load_split
from steps import stages as ex
from evaluation.features import load_features, save_features
from evaluation.report import write_report
from networks.geng16 import K as geng16_k, SCHEDULES
from unsupervised import cotraining, self_training

# Autoencoder iterations on the source, then the target features: the paper
# gives none; measured enough for the reconstruction to level off on
# synthetic features at pool5's scale (unsupervised/autoencoder.py).
AE_PRETRAIN_ITERS = 5000
AE_TARGET_ITERS = 2000
ROWS = ("source", "self_training", "subspace", "ae", "adversarial", "co_training")
TABLE9 = {"self_training": "Self-training", "subspace": "Subspace", "ae": "AE",
          "adversarial": "Adversarial [9]", "co_training": "Ours"}
NAMES = {"source": "source model alone", "self_training": "self-training",
         "subspace": "subspace model", "ae": "CNN + autoencoder",
         "adversarial": "gradient reversal", "co_training": "co-training (ours)"}


@dataclass
class Setup:
    """The networks and schedules of a study: the base (and its input and
    LMDB sizes when not the defaults), the two-stepped fine-tuning
    iterations of each round, the evaluation protocol, and overrides of
    the solver and the batch's K for short runs."""
    base: str = "googlenet"
    iters: object = "small"
    protocol: str = "single-shot"
    size: tuple = None
    lmdb_size: tuple = None
    solver_kw: dict = None
    k: int = None
    ae_iters: tuple = (AE_PRETRAIN_ITERS, AE_TARGET_ITERS)
    rounds: dict = field(default_factory=lambda: {"self_training": self_training.ROUNDS,
                                                  "co_training": cotraining.ROUNDS})


def setup_config(**kw):
    """A Setup as a stage's configuration: a dict, its schedule as
    iteration counts."""
    setup = asdict(Setup(**kw))
    if isinstance(setup["iters"], str):
        setup["iters"] = SCHEDULES[setup["iters"]]
    return setup


def _train_identities(split_path):
    split = load_split(split_path)
    return {split["images"][i]["pid"] for i in split["trials"][0]["train"]}


def _camera_a_images(split_path):
    split = load_split(split_path)
    cams = [split["images"][i]["cam"] for i in split["trials"][0]["train"]]
    return sum(c == min(cams) for c in cams) if cams else 0


def check_setup(setup, source_split, target_split, where):
    """What the study's data must satisfy for its batches of K identities,
    checked before any of its training: the labelled source set (the
    gradient-reversal model) and the target's soft labels, one class per
    camera-A training image (self- and co-training)."""
    k = setup.k or geng16_k
    for what, count in (("identities in the training half of the source split %s"
                         % source_split, len(_train_identities(source_split))),
                        ("soft-label classes (camera-A training images) in the target split %s"
                         % target_split, _camera_a_images(target_split))):
        if k > count:
            raise ValueError("k=%d identities per batch, but there are %d %s (stage %s)"
                             % (k, count, what, where))


def _test_features(ctx, name, weights, split_path, setup):
    return ex.extract(ctx, ctx.path(name + ".test.features.npz"), weights, split_path, setup.base,
                      ("query", "gallery"), size=setup.size, resize=setup.lmdb_size)


def _recoded(ctx, path, out, codes_of, record):
    """A features file with each subset's features replaced by codes_of(
    {subset: features}, {subset: cams}); `record` says what else than the
    features of `path` made the codes."""
    record = dict(record, features=records.sha1(path))
    if records.reuse_file(out, record, ctx.recompute):
        return out
    subsets, meta = load_features(path)
    codes = codes_of({s: v["features"] for s, v in subsets.items()},
                     {s: v["cams"] for s, v in subsets.items()})
    for s in subsets:
        subsets[s] = dict(subsets[s], features=codes[s].astype(np.float32))
    save_features(out, subsets, dict(meta, recoded=os.path.basename(out)))
    records.write_record(out, record)
    return out


def _stack(feats, cams, order=("query", "gallery")):
    return (np.vstack([feats[s] for s in order]), np.concatenate([cams[s] for s in order]),
            np.cumsum([0] + [len(feats[s]) for s in order]))


def subspace_features(ctx, source_test, out, lam):
    """The subspace model learnt (transductively, unlabelled) on the test
    images' source-model features; codes Z replace the features."""
    def codes_of(feats, cams):
        y, c, bounds = _stack(feats, cams)
        z = cotraining.subspace_codes(y, c, lam)
        return {"query": z[bounds[0]:bounds[1]], "gallery": z[bounds[1]:bounds[2]]}
    return _recoded(ctx, source_test, out, codes_of, {"subspace_lambda": lam})


def _source_train_file(ctx, source_weights, source_split, setup):
    return ex.extract(ctx, ctx.path("source.train.features.npz"), source_weights, source_split,
                      setup.base, ["train"], size=setup.size, resize=setup.lmdb_size)


def _source_train(ctx, source_weights, source_split, setup):
    """Features, cams and pids of the labelled source set's training images."""
    return load_features(_source_train_file(ctx, source_weights, source_split, setup))[0]["train"]


def autoencoder_features(ctx, source_weights, source_split, target_split, source_test, setup):
    """§5.6 CNN + AE: the AE (hidden = half the feature size, 512 for
    GoogLeNet's 1,024) pretrained on the source set's features, trained on
    the target's, its codes replacing the test features."""
    out = ctx.path("ae.test.features.npz")
    from unsupervised.autoencoder import encode, train_autoencoder
    source = _source_train(ctx, source_weights, source_split, setup)["features"]
    target = self_training.target_features(ctx, source_weights, target_split, setup.base,
                                           setup.size, setup.lmdb_size)[0]
    hidden = source.shape[1] // 2
    pre = train_autoencoder(source, ctx.path("ae", "source"), setup.ae_iters[0], hidden=hidden,
                            recompute=ctx.recompute)
    tuned = train_autoencoder(target, ctx.path("ae", "target"), setup.ae_iters[1], weights=pre,
                              hidden=hidden, recompute=ctx.recompute)
    return _recoded(ctx, source_test, out, lambda feats, cams: {
        s: encode(f, tuned, hidden=hidden) for s, f in feats.items()},
        {"autoencoder": records.sha1(tuned), "hidden": hidden})


def adversarial_weights(ctx, source_weights, source_split, target_split, setup):
    """§5.6 gradient reversal [9]: the base trained on the labelled source
    set (SID) with a domain classifier behind a reversal layer, source and
    target images in every batch, from the source model by name."""
    from training import surgery
    from networks import geng16 as geng16_net
    from training.two_step import transferred
    from networks import unsupervised as nets
    lmdb_size = setup.lmdb_size or ex.GENG16_LMDB[setup.base]
    source = ex.lmdb(ctx, source_split, "train", lmdb_size)
    index = load_split(target_split)["trials"][0]["train"]
    # every target image its own label: the data layer then samples images,
    # not identities (m = 1), and no identity structure reaches training
    own = self_training.soft_label_split(target_split, index, np.arange(len(index)),
                                         ctx.path("adversarial", "target.json"))
    target = ex.lmdb(ctx, own, "train", lmdb_size)
    kw = dict(k=setup.k) if setup.k else {}
    spec = nets.domain_adversarial(setup.base, ex.num_labels(source), setup.size,
                                   os.path.abspath(source), os.path.abspath(target), **kw)
    iters = geng16_net.SCHEDULES[setup.iters] if isinstance(setup.iters, str) else setup.iters
    solver = geng16_net.solver_text(ex.NET, iters[1], scale=ctx.scale,
                                    snapshot_prefix="domain_adversarial", **(setup.solver_kw or {}))
    # the base must come whole from the source model; the domain head is new
    return ex.train(ctx, "adversarial", geng16_net.net_text(spec, "domain_adversarial"), solver,
                    lambda net, out: surgery.build_init(
                        net, source_weights, out,
                        require=lambda name: transferred(name) and not name.startswith("domain_")),
                    [source_weights])


def source_lambda(ctx, source_weights, source_split, setup):
    """§5.2: λ cross-validated on the labelled source set (cached as JSON)."""
    path = ctx.path("lambda.json")
    feats = _source_train_file(ctx, source_weights, source_split, setup)
    record = {"features": records.sha1(feats)}
    if not records.reuse_file(path, record, ctx.recompute):
        train = load_features(feats)[0]["train"]
        choice = cotraining.choose_lambda(train["features"], train["cams"], train["pids"])
        scores = {str(k): v for k, v in choice.scores.items()}
        write_text(path, json.dumps({"lam": choice.lam, "scores": scores}) + "\n")
        records.write_record(path, record)
    with open(path) as f:
        return json.load(f)["lam"]


def run(ctx, source_weights, source_split, target_split, setup, rows=ROWS, paper_table="table9",
        paper_setting=None, title="Unsupervised transfer"):
    """Run the rows asked for and write ctx.path("report"); returns its paths
    and {row: labels per round} of the label-producing rows."""
    files, labels = {}, {}
    source_test = _test_features(ctx, "source", source_weights, target_split, setup)
    lam = source_lambda(ctx, source_weights, source_split, setup)
    train_kw = dict(size=setup.size, lmdb_size=setup.lmdb_size, solver_kw=setup.solver_kw,
                    k=setup.k)
    for row in rows:
        if row == "source":
            files[row] = source_test
        elif row == "self_training":
            weights, labels[row] = self_training.self_train(
                ctx, row, source_weights, target_split, setup.base, setup.iters,
                setup.rounds[row], **train_kw)
            files[row] = _test_features(ctx, row, weights, target_split, setup)
        elif row == "co_training":
            weights, labels[row] = cotraining.co_train(
                ctx, row, source_weights, target_split, setup.base, setup.iters, lam,
                setup.rounds[row], **train_kw)
            files[row] = _test_features(ctx, row, weights, target_split, setup)
        elif row == "subspace":
            files[row] = subspace_features(ctx, source_test, ctx.path("subspace.test.features.npz"),
                                           lam)
        elif row == "ae":
            files[row] = autoencoder_features(ctx, source_weights, source_split, target_split,
                                              source_test, setup)
        elif row == "adversarial":
            weights = adversarial_weights(ctx, source_weights, source_split, target_split, setup)
            files[row] = _test_features(ctx, row, weights, target_split, setup)
        else:
            raise ValueError("unsupervised study: unknown row %r; known: %s" % (row, ", ".join(ROWS)))
    report_rows = []
    for row in rows:
        spec = None
        if paper_table == "table9" and row in TABLE9:
            spec = "geng16:table9:" + TABLE9[row]
        elif paper_table == "table7" and row == "co_training":
            spec = "geng16:table7:Ours:" + paper_setting
        report = ex._report(ctx, "eval_" + row, features=[files[row]], protocol=setup.protocol,
                            title=NAMES[row], paper=spec)
        with open(os.path.join(report, RESULTS_JSON)) as f:
            for r in json.load(f)["results"]:
                r["name"] = "%s, %s" % (NAMES[row], r["name"])
                report_rows.append(r)
    changes = {row: [int((a != b).sum()) for a, b in zip(h, h[1:])] for row, h in labels.items()}
    meta = {"lambda": lam, "label_changes_between_rounds": changes,
            "rounds_run": {row: len(h) for row, h in labels.items()}}
    return write_report(ctx.path("report"), report_rows, title, meta), labels
