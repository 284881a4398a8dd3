"""Every experiment of the two papers as stages (experiments/plan.py): one
recipe per kind of table row, each asking a plan.Builder for its data,
training, extraction or scoring and report stages. `graph(config)` is what
the Snakefile runs: the experiments named in its config, under its options.

Fidelity choices (README "Fidelity choices"), each defaulting to the
paper's reading; a stage made under another reading is another stage:
    pairs      Geng16 in-batch pairs (§5.2's "3,968 … respectively")
    step1_pv   Geng16 step 1 also trains the new PV layers
    rnk_net    MTDnet-rnk net and init (the authors' train_val.prototxt)
    prid_lr    MTDnet PRID2011 base_lr (the authors' solver: 1e-4)
"""
from dataclasses import asdict, dataclass, field, fields

from data_prep.augment import COPIES
from evaluation import papers
from experiments.plan import GENG16_LMDB, MTDNET_LMDB, Builder, Graph
from layers.pair_generation import PAIRS
from networks import geng16 as geng16_net
from networks import mtdnet as mtdnet_net
from networks import solver as schedules


@dataclass
class Options:
    """What a recipe may need beyond the Builder."""
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

    @property
    def label(self):
        return self.key.replace(" ", "_")


# DGDNet has no public ImageNet model: its rows plan (--plan counts them)
# with this in the weights' place, and tools.reproduce refuses to run them
# without --imagenet.
NO_DGDNET_IMAGENET = "no-public-DGDNet-ImageNet-model"
NO_DGDNET_IMAGENET_TEXT = ("no public ImageNet model of DGDNet: give --imagenet W.caffemodel, "
                           "or take the row without ImageNet pretraining")


def _imagenet(b, opts, base):
    if base == "googlenet":
        return b.weights("bvlc_googlenet", opts.imagenet)
    return b.external(opts.imagenet) if opts.imagenet else NO_DGDNET_IMAGENET


# ---- Geng16 -------------------------------------------------------------

SMALL_SETS = {"viper": ("viper", {}), "prid": ("prid2011", {}),
              "cuhk01_871": ("cuhk01", {"protocol": "871/100"}),
              "cuhk01_485": ("cuhk01", {"protocol": "485/486"})}


def _fidelity(opts, variant, two_step):
    """A Geng16 stage's net options with the fidelity choices: the pair
    reading, and step 1's PV training where the stage has a step 1."""
    kw = dict(variant, pairs=opts.pairs)
    if opts.step1_pv and two_step:
        kw["step1_pv"] = True
    return kw


def _per_trial(b, opts, split, name, weights, schedule, two_step, base, variant):
    """One Geng16 stage per trial of the split (its own training half);
    returns [(trial, stage)]."""
    models = []
    for trial in range(opts.trials):
        train = b.lmdb(split, "train", GENG16_LMDB[base], trial, opts.augment)
        models.append((trial, b.geng16("%s_t%d" % (name, trial), train, weights, schedule,
                                       two_step, base=base, **_fidelity(opts, variant, two_step))))
    return models


def geng16_large(b, opts, e, dataset, paper, protocol, base="googlenet", pretrained=True,
                 two_step=True, **variant):
    """ImageNet → a large set (CUHK03 / Market), Geng16 §5.3 "one-staged"."""
    split_kw = {"version": variant.pop("version")} if "version" in variant else {}
    sp = b.split(dataset, name=dataset + "_" + split_kw.get("version", "std"), **split_kw)
    weights = _imagenet(b, opts, base) if pretrained else None
    models = _per_trial(b, opts, sp, dataset, weights, "large", two_step and pretrained, base,
                        variant)
    subsets = ["query", "gallery"] + (["multi_query"] if protocol == "market" else [])
    return [b.evaluate_geng16(e.label, models, sp, base, protocol, paper, subsets, title=e.key)]


def geng16_merged(b, opts, base="googlenet", pretrained=True, **variant):
    """ImageNet → CUHK03 + Market merged (Geng16 §5.3, the first of two
    stages); returns (merged split, model)."""
    cuhk03 = b.split("cuhk03", name="cuhk03_labeled")
    market = b.split("market1501", name="market1501_std")
    sp = b.merged("cuhk03_market1501", [cuhk03, market])
    train = b.lmdb(sp, "train", GENG16_LMDB[base], 0, opts.augment)
    weights = _imagenet(b, opts, base) if pretrained else None
    return sp, b.geng16("large", train, weights, "large", pretrained, base=base,
                        **_fidelity(opts, variant, pretrained))


def geng16_small(b, opts, e, small, paper, base="googlenet", pretrained=True, two_step=True,
                 **variant):
    """ImageNet → CUHK03 + Market → a small set (Geng16 §5.3, two stages)."""
    _, large = geng16_merged(b, opts, base, pretrained, **variant)
    dataset, protocol = SMALL_SETS[small]
    sp = b.split(dataset, name=small, **protocol)
    models = _per_trial(b, opts, sp, small, large, "small", two_step, base, variant)
    return [b.evaluate_geng16(e.label, models, sp, base, "single-shot", paper, title=e.key)]


UNSUPERVISED_ROWS = ("source", "self_training", "subspace", "ae", "adversarial", "co_training")
UNSUPERVISED_SETS = {"viper": "viper", "prid": "prid", "cuhk01": "cuhk01_485"}


def study_setup(**kw):
    """The unsupervised study's settings (unsupervised/study.py Setup) as a
    stage's configuration, its schedule as iteration counts."""
    from unsupervised.study import Setup
    setup = asdict(Setup(**kw))
    if isinstance(setup["iters"], str):
        setup["iters"] = geng16_net.SCHEDULES[setup["iters"]]
    return setup


def geng16_unsupervised(b, opts, e, small, rows, table, setting=None):
    """ImageNet → CUHK03 + Market (supervised) → a small set without its
    labels (Geng16 §4.2, §5.4, §5.6; unsupervised/study.py)."""
    source, large = geng16_merged(b, opts)
    dataset, protocol = SMALL_SETS[UNSUPERVISED_SETS[small]]
    target = b.split(dataset, name=small, **protocol)
    setup = study_setup(base="googlenet", iters="small", protocol="single-shot")
    return [b.unsupervised(e.label, large, source, target, setup, rows, table, setting,
                           "Geng16 %s: unsupervised transfer to %s" % (table, small))]


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
            lambda b, o, e, v=version, s=col: geng16_large(
                b, o, e, "cuhk03", "geng16:table1:Ours:" + s, "single-shot", version=v))
    add("table2", "ImageNet → Market-1501, two-stepped, SID + PV (single and multi query)",
        ["geng16:table2:Ours"],
        lambda b, o, e: geng16_large(b, o, e, "market1501", "geng16:table2:Ours", "market"))
    for small in SMALL_SETS:
        add("table3 " + small, "ImageNet → CUHK03 + Market → %s, two-stepped" % small,
            ["geng16:table3:Ours:" + small],
            lambda b, o, e, s=small: geng16_small(b, o, e, s, "geng16:table3:Ours:" + s))
    for key, (row, losses) in LOSS_ROWS.items():
        add("table4 " + key, "ImageNet → Market-1501 with losses %s" % row, ["geng16:table4:" + row],
            lambda b, o, e, r=row, l=losses: geng16_large(
                b, o, e, "market1501", "geng16:table4:" + r, "market", losses=l))
    for losses in ("sid_pv", "sid_tl"):
        for drop, name in DROPOUT_ROWS.items():
            row = "%s / %s" % (LOSS_ROWS[losses][0], name)
            kw = dict(losses=LOSS_ROWS[losses][1], pv_dropout="consistent" if drop == "consistent"
                      else "random")
            add("table5 %s %s market" % (losses, drop), "Market-1501, %s" % row,
                ["geng16:table5:%s:market1501" % row],
                lambda b, o, e, r=row, k=kw: geng16_large(
                    b, o, e, "market1501", "geng16:table5:%s:market1501" % r, "market", **k))
            add("table5 %s %s viper" % (losses, drop), "VIPeR, %s" % row,
                ["geng16:table5:%s:viper" % row],
                lambda b, o, e, r=row, k=kw: geng16_small(
                    b, o, e, "viper", "geng16:table5:%s:viper" % r, **k))
    for two, row in ((False, "One-stepped"), (True, "Two-stepped")):
        add("table6 " + row.lower(), "ImageNet → CUHK03 + Market → VIPeR, %s" % row.lower(),
            ["geng16:table6:" + row],
            lambda b, o, e, t=two, r=row: geng16_small(b, o, e, "viper", "geng16:table6:" + r,
                                                       two_step=t))
    for base, bname in (("dgdnet", "DGDNet"), ("googlenet", "GoogLeNet")):
        for pre, yes in ((True, "YES"), (False, "NO")):
            for key, (lname, losses) in (("sid", LOSS_ROWS["sid"]), ("sid_pv", LOSS_ROWS["sid_pv"])):
                row = "Market / %s / %s / %s" % (bname, lname, yes)
                add("table8 market %s %s %s" % (base, key, "imagenet" if pre else "scratch"), row,
                    ["geng16:table8:" + row],
                    lambda b, o, e, ba=base, p=pre, l=losses, r=row: geng16_large(
                        b, o, e, "market1501", "geng16:table8:" + r, "market", ba, p, losses=l))
            row = "VIPeR / %s / SID + PV / %s" % (bname, yes)
            add("table8 viper %s sid_pv %s" % (base, "imagenet" if pre else "scratch"), row,
                ["geng16:table8:" + row],
                lambda b, o, e, ba=base, p=pre, r=row: geng16_small(
                    b, o, e, "viper", "geng16:table8:" + r, ba, p))
    for small in UNSUPERVISED_SETS:
        add("table7 " + small, "ImageNet → CUHK03 + Market → unlabelled %s, co-training" % small,
            ["geng16:table7:Ours:" + small],
            lambda b, o, e, s=small: geng16_unsupervised(b, o, e, s, ("co_training",), "table7", s))
    add("table9", "Unsupervised alternatives on unlabelled VIPeR: self-training, subspace, AE, "
        "gradient reversal, co-training", ["geng16:table9:" + r for r in
                                           ("Self-training", "Subspace", "AE", "Adversarial [9]", "Ours")],
        lambda b, o, e: geng16_unsupervised(b, o, e, "viper", UNSUPERVISED_ROWS, "table9"))
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


def mtdnet_cuhk03(b, opts, net, trial=0):
    """CaffeNet conv1–2 → CUHK03, 200K iterations (REFERENCE.md §3)."""
    sp = b.split("cuhk03", name="cuhk03_labeled")
    train = b.lmdb(sp, "train", MTDNET_LMDB, trial)
    caffenet = b.weights("bvlc_reference_caffenet", opts.caffenet)
    return sp, b.mtdnet("cuhk03_%s_t%d" % (net, trial), net, train,
                        schedules.MTDNET_CUHK03_ITERS, caffenet=caffenet, **_rnk_kw(opts, net))


def mtdnet_run(b, opts, e, dataset, row):
    label, net, test = MTDNET_ROWS[row]
    paper = "mtdnet:table1:%s:%s" % (label, dataset)
    models = []
    if dataset == "cuhk03":
        for trial in range(opts.trials):
            sp, model = mtdnet_cuhk03(b, opts, net, trial)
            models.append((trial, model))
    else:
        # small sets: fine-tuned 20K from the CUHK03 model (cross: the
        # multi-task model, its target stream copied into the source stream)
        cuhk03_sp, source = mtdnet_cuhk03(b, opts, "mtdnet" if net == "mtdnet_cross" else net)
        name, protocol = MTDNET_SETS[dataset]
        sp = b.split(name, name=dataset, **protocol)
        if row == "aug":
            sp = b.merged(dataset + "_aug", [sp, cuhk03_sp], eval_from=0)
        aux = b.lmdb(cuhk03_sp, "train", MTDNET_LMDB) if net == "mtdnet_cross" else None
        solver_kw = ({"base_lr": schedules.mtdnet_prid_lr(opts.prid_lr, net)}
                     if dataset == "prid2011" else None)
        for trial in range(opts.trials):
            train = b.lmdb(sp, "train", MTDNET_LMDB, trial)
            models.append((trial, b.mtdnet("%s_%s_t%d" % (dataset, row, trial), net, train,
                                           schedules.MTDNET_SMALL_ITERS, weights=source, aux=aux,
                                           solver_kw=solver_kw, **_rnk_kw(opts, net))))
    return [b.evaluate_mtdnet("%s_t%d" % (e.label, trial), model,
                              b.lmdb(sp, "query", MTDNET_LMDB, trial),
                              b.lmdb(sp, "gallery", MTDNET_LMDB, trial), test, paper,
                              title="%s, trial %d" % (e.key, trial))
            for trial, model in models]


def mtdnet_experiments():
    out = []
    for dataset in MTDNET_SETS:
        for row, (label, net, _) in MTDNET_ROWS.items():
            if dataset == "cuhk03" and row in ("aug", "cross"):
                continue  # transfer rows: CUHK03 is their source
            out.append(Experiment("mtdnet %s %s" % (dataset, row),
                                  "%s on %s (%s)" % (label, dataset, net),
                                  ["mtdnet:table1:%s:%s" % (label, dataset)],
                                  lambda b, o, e, d=dataset, r=row: mtdnet_run(b, o, e, d, r)))
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


def find(key, known=None):
    """The Experiment of `key` (a key of experiments()); ValueError naming
    the keys it starts, else pointing at the list."""
    known = known if known is not None else experiments()
    if key not in known:
        near = [k for k in known if k.startswith(key)]
        raise ValueError("unknown experiment %r; %s" % (
            key, "did you mean: " + ", ".join(near) if near else "see --list"))
    return known[key]


# The demo's workflows (experiments/demo.py, tools.demo): key → its stages.
DEMOS = {"demo": "stages", "demo unsupervised": "unsupervised_stages"}


def graph(config):
    """The Graph of config["experiments"] (keys; "demo" is the demo's,
    experiments/demo.py) under config["options"]: data_root, scale, k, seed
    and the Options fields; config["run"] (gpu, snapshot_every, progress)
    rides along for the jobs."""
    options = dict(config.get("options", {}))
    b = Builder(**{f.name: options.pop(f.name) for f in fields(Builder) if f.name in options})
    opts = Options(**{f.name: options.pop(f.name) for f in fields(Options) if f.name in options})
    if options:
        raise ValueError("unknown workflow option(s): %s" % ", ".join(sorted(options)))
    g = Graph(config.get("run"))
    known = experiments()
    for key in config.get("experiments", []):
        if key in DEMOS:
            from experiments import demo
            g.add(key, getattr(demo, DEMOS[key])(b, demo.Settings(**config.get("demo", {}))))
            continue
        e = find(key, known)
        check_options(key, opts)
        g.add(key, e.run(b, opts, e))
    return g
