"""The papers' experiments as recipes of stages (experiments/stages.py),
the library of `python -m tools.reproduce` (issue 7): `experiments()` is
the table {key: Experiment} of every table row of the two papers that is one
experiment, each with the paper's numbers (`list_text`, --list), and
`reproduce(key, ctx, opts)` runs one: data preparation, every training
stage (staged transfer, two-stepped unless the row says otherwise),
feature extraction or CIR scoring, and evaluation, ending with the report
beside the paper's numbers (evaluation/evaluate.py: results.md,
results.json, cmc.png). Everything goes under ctx.run_dir; a stage already
done is skipped and an interrupted one resumes, so rerunning continues
where it stopped.

Datasets are read from <data_root>/<name>/ (market1501, cuhk03, viper,
prid2011, cuhk01, ilids) as distributed (REFERENCE.md §4). ImageNet and
CaffeNet weights come through training/fetch_weights.py (or Options'
imagenet / caffenet). `ctx.scale` shrinks every schedule (1 = the paper's
iterations); `opts.trials` is how many of a dataset's random splits are
trained and averaged (the papers: all 10 of the small sets, 20 of CUHK03).

Fidelity choices (README "Fidelity choices"), each defaulting to the
paper's reading; an experiment keeps its key, and its stages made under
another reading are refused unless recompute (Options):
    pairs unordered|ordered   Geng16 in-batch pairs (§5.2's "3,968 … respectively")
    step1_pv                  Geng16 step 1 also trains the new PV layers
    rnk_net ours|authors      MTDnet-rnk net and init (the authors' train_val.prototxt)
    prid_lr paper|authors     MTDnet PRID2011 base_lr (the authors' solver: 1e-4)
"""
import os
from dataclasses import dataclass, field

from common.atomic import write_text
from common.config import WEIGHTS_ROOT
from data_prep.augment import COPIES
from experiments import stages as ex
from evaluation import papers
from layers.pair_generation import PAIRS
from networks import mtdnet as mtdnet_net
from networks import solver as schedules


@dataclass
class Options:
    """What a recipe may need beyond the Context."""
    trials: int = 1
    imagenet: str = None    # ImageNet weights of the base (GoogLeNet: fetched when absent)
    caffenet: str = None    # bvlc_reference_caffenet (MTDnet conv1–2)
    augment: int = COPIES   # Geng16 §5.2: five augmented copies per training image
    pairs: str = PAIRS[0]   # Geng16 in-batch pairs: unordered (the default) or ordered
    step1_pv: bool = False  # Geng16 step 1: the new classifier alone (the paper) or PV too
    rnk_net: str = mtdnet_net.RNK_NETS[0]  # MTDnet-rnk: ours (the paper's) or the authors'
    prid_lr: str = schedules.PRID_LRS[0]   # MTDnet PRID2011 lr: the paper's or the authors'


# Where each fidelity option applies (experiment key → bool); elsewhere a
# non-default value is refused rather than silently unused.
def _supervised_geng16(key):
    return key.startswith("geng16 ") and not key.startswith(("geng16 table7", "geng16 table9"))


OPTION_SCOPE = {
    "pairs": ("--pairs", _supervised_geng16, "the supervised Geng16 tables (1-6, 8)"),
    "step1_pv": ("--step1-pv", _supervised_geng16, "the supervised Geng16 tables (1-6, 8)"),
    "rnk_net": ("--rnk-net", lambda key: key.startswith("mtdnet ") and key.endswith(" rnk"),
                "the MTDnet-rnk rows"),
    "prid_lr": ("--prid-lr", lambda key: key.startswith("mtdnet prid2011 "),
                "the MTDnet PRID2011 rows"),
}


def check_options(key, opts):
    """Refuse a fidelity option given a non-default value for an experiment
    it does not change."""
    defaults = Options()
    for name, (flag, applies, where) in OPTION_SCOPE.items():
        if getattr(opts, name) != getattr(defaults, name) and not applies(key):
            raise ValueError("%s does not apply to %r: it changes %s" % (flag, key, where))


@dataclass
class Experiment:
    key: str
    about: str
    papers: list
    run: object = field(repr=False)


def _weights(path, name):
    """A given weights file, or the model zoo's by training/fetch_weights.py."""
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError("weights file not found: %s" % path)
        return path
    from training.fetch_weights import fetch
    return fetch(name, WEIGHTS_ROOT)


def _imagenet(opts, base):
    if base == "googlenet":
        return _weights(opts.imagenet, "bvlc_googlenet")
    if not opts.imagenet:
        raise ValueError("no public ImageNet model of DGDNet: give --imagenet W.caffemodel, "
                         "or take the row without ImageNet pretraining")
    return _weights(opts.imagenet, None)


# ---- Geng16 -------------------------------------------------------------

SMALL_SETS = {"viper": ("viper", {}), "prid": ("prid2011", {}),
              "cuhk01_871": ("cuhk01", {"protocol": "871/100"}),
              "cuhk01_485": ("cuhk01", {"protocol": "485/486"})}


def geng16_large(ctx, opts, dataset, paper, protocol, base="googlenet", pretrained=True,
                 two_step=True, **variant):
    """ImageNet → a large set (CUHK03 / Market), Geng16 §5.3 "one-staged"."""
    split_kw = {"version": variant.pop("version")} if "version" in variant else {}
    sp = ex.split(ctx, dataset, name=dataset + "_" + split_kw.get("version", "std"), **split_kw)
    weights = _imagenet(opts, base) if pretrained else None
    models = _per_trial(ctx, opts, sp, dataset, weights, "large", two_step and pretrained, base,
                        variant)
    subsets = ["query", "gallery"] + (["multi_query"] if protocol == "market" else [])
    return ex.evaluate_geng16(ctx, "report", models, sp, base, protocol, paper, subsets)


def _fidelity(opts, variant, two_step):
    """A Geng16 stage's net options with the fidelity choices: the pair
    reading, and step 1's PV training where the stage has a step 1."""
    kw = dict(variant, pairs=opts.pairs)
    if opts.step1_pv and two_step:
        kw["step1_pv"] = True
    return kw


def _per_trial(ctx, opts, split_path, name, weights, schedule, two_step, base, variant):
    """One Geng16 stage per trial of the split (its own training half);
    returns [(trial, weights)]."""
    models = []
    for trial in range(opts.trials):
        train = ex.lmdb(ctx, split_path, "train", ex.GENG16_LMDB[base], trial, opts.augment)
        models.append((trial, ex.geng16(ctx, "%s_t%d" % (name, trial), train, weights, schedule,
                                        two_step, base=base, **_fidelity(opts, variant, two_step))))
    return models


def geng16_merged(ctx, opts, base="googlenet", pretrained=True, **variant):
    """ImageNet → CUHK03 + Market merged (Geng16 §5.3, the first of two
    stages); returns (merged split, weights)."""
    cuhk03 = ex.split(ctx, "cuhk03", name="cuhk03_labeled")
    market = ex.split(ctx, "market1501", name="market1501_std")
    sp = ex.merged(ctx, "cuhk03_market1501", [cuhk03, market])
    train = ex.lmdb(ctx, sp, "train", ex.GENG16_LMDB[base], 0, opts.augment)
    weights = _imagenet(opts, base) if pretrained else None
    return sp, ex.geng16(ctx, "large", train, weights, "large", pretrained, base=base,
                         **_fidelity(opts, variant, pretrained))


def geng16_small(ctx, opts, small, paper, base="googlenet", pretrained=True, two_step=True,
                 **variant):
    """ImageNet → CUHK03 + Market → a small set (Geng16 §5.3, two stages)."""
    _, large = geng16_merged(ctx, opts, base, pretrained, **variant)
    dataset, protocol = SMALL_SETS[small]
    sp = ex.split(ctx, dataset, name=small, **protocol)
    models = _per_trial(ctx, opts, sp, small, large, "small", two_step, base, variant)
    return ex.evaluate_geng16(ctx, "report", models, sp, base, "single-shot", paper)


UNSUPERVISED_ROWS = ("source", "self_training", "subspace", "ae", "adversarial", "co_training")
UNSUPERVISED_SETS = {"viper": "viper", "prid": "prid", "cuhk01": "cuhk01_485"}


def geng16_unsupervised(ctx, opts, small, rows, table, setting=None):
    """ImageNet → CUHK03 + Market (supervised) → a small set without its
    labels (Geng16 §4.2, §5.4, §5.6; unsupervised/study.py)."""
    from unsupervised import study
    source, large = geng16_merged(ctx, opts)
    dataset, protocol = SMALL_SETS[UNSUPERVISED_SETS[small]]
    target = ex.split(ctx, dataset, name=small, **protocol)
    setup = study.Setup(base="googlenet", iters="small", protocol="single-shot", k=ctx.k)
    paths, _ = study.run(ctx, large, source, target, setup, rows, table, setting,
                         "Geng16 %s: unsupervised transfer to %s" % (table, small))
    return os.path.dirname(paths["results.md"])


LOSS_ROWS = {"sid": ("SID", ("sid",)), "pv": ("PV", ("pv",)), "tl": ("TL", ("tl",)),
             "sid_pv": ("SID + PV", ("sid", "pv")), "sid_tl": ("SID + TL", ("sid", "tl")),
             "pv_tl": ("PV + TL", ("pv", "tl")), "sid_pv_tl": ("SID + PV + TL", ("sid", "pv", "tl"))}
DROPOUT_ROWS = {"random": "Random", "consistent": "Pairwise-consistent"}


def geng16_experiments():
    out = []

    def add(key, about, specs, run):
        out.append(Experiment("geng16 " + key, about, specs, run))

    for version, col in (("labeled", "manual"), ("detected", "detected")):
        add("table1 " + version, "ImageNet → CUHK03 %s, two-stepped, SID + PV" % version,
            ["geng16:table1:Ours:" + col],
            lambda c, o, v=version, s=col: geng16_large(c, o, "cuhk03", "geng16:table1:Ours:" + s,
                                                        "single-shot", version=v))
    add("table2", "ImageNet → Market-1501, two-stepped, SID + PV (single and multi query)",
        ["geng16:table2:Ours"],
        lambda c, o: geng16_large(c, o, "market1501", "geng16:table2:Ours", "market"))
    for small in SMALL_SETS:
        add("table3 " + small, "ImageNet → CUHK03 + Market → %s, two-stepped" % small,
            ["geng16:table3:Ours:" + small],
            lambda c, o, s=small: geng16_small(c, o, s, "geng16:table3:Ours:" + s))
    for key, (row, losses) in LOSS_ROWS.items():
        add("table4 " + key, "ImageNet → Market-1501 with losses %s" % row, ["geng16:table4:" + row],
            lambda c, o, r=row, l=losses: geng16_large(c, o, "market1501", "geng16:table4:" + r,
                                                        "market", losses=l))
    for losses in ("sid_pv", "sid_tl"):
        for drop, name in DROPOUT_ROWS.items():
            row = "%s / %s" % (LOSS_ROWS[losses][0], name)
            kw = dict(losses=LOSS_ROWS[losses][1], pv_dropout="consistent" if drop == "consistent"
                      else "random")
            add("table5 %s %s market" % (losses, drop), "Market-1501, %s" % row,
                ["geng16:table5:%s:market1501" % row],
                lambda c, o, r=row, k=kw: geng16_large(c, o, "market1501",
                                                       "geng16:table5:%s:market1501" % r, "market", **k))
            add("table5 %s %s viper" % (losses, drop), "VIPeR, %s" % row,
                ["geng16:table5:%s:viper" % row],
                lambda c, o, r=row, k=kw: geng16_small(c, o, "viper", "geng16:table5:%s:viper" % r, **k))
    for two, row in ((False, "One-stepped"), (True, "Two-stepped")):
        add("table6 " + row.lower(), "ImageNet → CUHK03 + Market → VIPeR, %s" % row.lower(),
            ["geng16:table6:" + row],
            lambda c, o, t=two, r=row: geng16_small(c, o, "viper", "geng16:table6:" + r, two_step=t))
    for base, bname in (("dgdnet", "DGDNet"), ("googlenet", "GoogLeNet")):
        for pre, yes in ((True, "YES"), (False, "NO")):
            for key, (lname, losses) in (("sid", LOSS_ROWS["sid"]), ("sid_pv", LOSS_ROWS["sid_pv"])):
                row = "Market / %s / %s / %s" % (bname, lname, yes)
                add("table8 market %s %s %s" % (base, key, "imagenet" if pre else "scratch"), row,
                    ["geng16:table8:" + row],
                    lambda c, o, b=base, p=pre, l=losses, r=row: geng16_large(
                        c, o, "market1501", "geng16:table8:" + r, "market", b, p, losses=l))
            row = "VIPeR / %s / SID + PV / %s" % (bname, yes)
            add("table8 viper %s sid_pv %s" % (base, "imagenet" if pre else "scratch"), row,
                ["geng16:table8:" + row],
                lambda c, o, b=base, p=pre, r=row: geng16_small(c, o, "viper", "geng16:table8:" + r,
                                                                b, p))
    for small in UNSUPERVISED_SETS:
        add("table7 " + small, "ImageNet → CUHK03 + Market → unlabelled %s, co-training" % small,
            ["geng16:table7:Ours:" + small],
            lambda c, o, s=small: geng16_unsupervised(c, o, s, ("co_training",), "table7", s))
    add("table9", "Unsupervised alternatives on unlabelled VIPeR: self-training, subspace, AE, "
        "gradient reversal, co-training", ["geng16:table9:" + r for r in
                                           ("Self-training", "Subspace", "AE", "Adversarial [9]", "Ours")],
        lambda c, o: geng16_unsupervised(c, o, "viper", UNSUPERVISED_ROWS, "table9"))
    return out


# ---- MTDnet -------------------------------------------------------------

MTDNET_SETS = {"cuhk03": ("cuhk03", {}), "cuhk01": ("cuhk01", {"protocol": "871/100"}),
               "viper": ("viper", {}), "ilids": ("ilids", {}), "prid2011": ("prid2011", {})}
# Table 1 row → (training net, how the gallery is ranked, source images added)
MTDNET_ROWS = {"rnk": ("MTDnet-rnk", "mtdnet_rnk", "rnk"), "cls": ("MTDnet-cls", "mtdnet_cls", "cir"),
               "trp": ("MTDnet-trp", "mtdnet", "trp"), "mtdnet": ("MTDnet", "mtdnet", "cir"),
               "aug": ("MTDnet-aug", "mtdnet", "cir"), "cross": ("MTDnet-cross", "mtdnet_cross", "cir")}


def _rnk_kw(opts, net):
    """The MTDnet-rnk reading (its net; its CaffeNet init follows the net's
    wiring, training/mtdnet_init.py)."""
    return {"rnk_net": opts.rnk_net} if net == "mtdnet_rnk" else {}


def mtdnet_cuhk03(ctx, opts, net, trial=0):
    """CaffeNet conv1–2 → CUHK03, 200K iterations (REFERENCE.md §3)."""
    sp = ex.split(ctx, "cuhk03", name="cuhk03_labeled")
    train = ex.lmdb(ctx, sp, "train", ex.MTDNET_LMDB, trial)
    caffenet = _weights(opts.caffenet, "bvlc_reference_caffenet")
    return sp, ex.mtdnet(ctx, "cuhk03_%s_t%d" % (net, trial), net, train,
                         schedules.MTDNET_CUHK03_ITERS, caffenet=caffenet, **_rnk_kw(opts, net))


def mtdnet_run(ctx, opts, dataset, row):
    label, net, test = MTDNET_ROWS[row]
    paper = "mtdnet:table1:%s:%s" % (label, dataset)
    models = []
    if dataset == "cuhk03":
        for trial in range(opts.trials):
            sp, weights = mtdnet_cuhk03(ctx, opts, net, trial)
            models.append((trial, weights))
    else:
        # small sets: fine-tuned 20K from the CUHK03 model (cross: the
        # multi-task model, its target stream copied into the source stream)
        cuhk03_sp, source = mtdnet_cuhk03(ctx, opts, "mtdnet" if net == "mtdnet_cross" else net)
        name, protocol = MTDNET_SETS[dataset]
        sp = ex.split(ctx, name, name=dataset, **protocol)
        if row == "aug":
            sp = ex.merged(ctx, dataset + "_aug", [sp, cuhk03_sp], eval_from=0)
        aux = ex.lmdb(ctx, cuhk03_sp, "train", ex.MTDNET_LMDB) if net == "mtdnet_cross" else None
        solver_kw = ({"base_lr": schedules.mtdnet_prid_lr(opts.prid_lr, net)}
                     if dataset == "prid2011" else None)
        for trial in range(opts.trials):
            train = ex.lmdb(ctx, sp, "train", ex.MTDNET_LMDB, trial)
            models.append((trial, ex.mtdnet(ctx, "%s_%s_t%d" % (dataset, row, trial), net, train,
                                            schedules.MTDNET_SMALL_ITERS, weights=source,
                                            aux_lmdb=aux, solver_kw=solver_kw,
                                            **_rnk_kw(opts, net))))
    reports = []
    for trial, weights in models:
        query = ex.lmdb(ctx, sp, "query", ex.MTDNET_LMDB, trial)
        gallery = ex.lmdb(ctx, sp, "gallery", ex.MTDNET_LMDB, trial)
        reports.append(ex.evaluate_mtdnet(ctx, "report_t%d" % trial, weights, query, gallery, test,
                                          paper))
    return reports[0] if len(reports) == 1 else reports


def mtdnet_experiments():
    out = []
    for dataset in MTDNET_SETS:
        for row, (label, net, _) in MTDNET_ROWS.items():
            if dataset == "cuhk03" and row in ("aug", "cross"):
                continue  # transfer rows: CUHK03 is their source
            out.append(Experiment("mtdnet %s %s" % (dataset, row),
                                  "%s on %s (%s)" % (label, dataset, net),
                                  ["mtdnet:table1:%s:%s" % (label, dataset)],
                                  lambda c, o, d=dataset, r=row: mtdnet_run(c, o, d, r)))
    return out


def experiments():
    """{key: Experiment} of every experiment known."""
    return {e.key: e for e in geng16_experiments() + mtdnet_experiments()}


def _paper_numbers(spec):
    """"r1 56.3  r5 83.3 …" of a paper row; "setting: …" for each setting of
    a table that has several."""
    parts = spec.split(":")
    table = papers.load()["papers"][parts[0]]["tables"][parts[1]]
    wanted = ([s for s in papers.settings(table) if s] if len(parts) == 3 else []) or [None]
    out = []
    for setting in wanted:
        values = papers.lookup(spec + (":" + setting if setting else ""))["values"]
        text = "  ".join("%s %s" % (k, "-" if v is None else "%.1f" % v) for k, v in values.items())
        out.append(setting + ": " + text if setting else text)
    return "; ".join(out)


def list_text(known):
    lines = []
    for key, e in known.items():
        nums = "; ".join(("%s: " % s.split(":")[2] if len(e.papers) > 1 else "") + _paper_numbers(s)
                         for s in e.papers)
        lines.append("%-44s %s\n%44s   paper: %s" % (key, e.about, "", nums))
    return "\n".join(lines)


def claim_run_dir(run_dir, key):
    """Mark run_dir as this experiment's, or refuse one that holds another
    experiment: stage names repeat across experiments (each has its own
    `report`, `market1501_t0`, …), so a shared folder would reuse the
    wrong stages."""
    path = os.path.join(run_dir, "experiment.txt")
    if os.path.isfile(path):
        with open(path) as f:
            owner = f.read().strip()
        if owner != key:
            raise ValueError("%s holds experiment %r, not %r: give another --run-dir"
                             % (run_dir, owner, key))
        return
    os.makedirs(run_dir, exist_ok=True)
    write_text(path, key + "\n")


def find(key, known=None):
    """The Experiment of `key` (a key of experiments()); ValueError naming
    the keys it starts, else pointing at the list."""
    known = known if known is not None else experiments()
    if key not in known:
        near = [k for k in known if k.startswith(key)]
        raise ValueError("unknown experiment %r; %s" % (
            key, "did you mean: " + ", ".join(near) if near else "see --list"))
    return known[key]


def reproduce(key, ctx, opts, known=None):
    """Run experiment `key` in ctx.run_dir (claimed for it) with `opts`;
    returns its report folders (one per report: MTDnet tests each trial)."""
    experiment = find(key, known)
    check_options(key, opts)
    claim_run_dir(ctx.run_dir, key)
    report = experiment.run(ctx, opts)
    return report if isinstance(report, list) else [report]
