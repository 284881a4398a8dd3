"""Every experiment of the two papers, as data: one table per paper
(GENG16, and MTDnet's rows × datasets), each row naming its recipe, its
dataset, losses, base, pretraining and the paper's row; one recipe per
kind of row plans its stages through a plan.Builder (data, training,
extraction or scoring, report). `graph(config)` is what a command runs:
the experiments named in its config, under its options.

Fidelity choices (docs: reproducing the tables), each defaulting to the
paper's reading; a stage made under another reading is another stage:
    pairs      Geng16 in-batch pairs (§5.2's "3,968 … respectively")
    step1_pv   Geng16 step 1 also trains the new PV layers
    rnk_net    MTDnet-rnk net and init (the authors' train_val.prototxt)
    prid_lr    MTDnet PRID2011 base_lr (the authors' solver: 1e-4)
"""
from dataclasses import dataclass, fields

from data_prep.augment import COPIES
from evaluation import papers
from experiments import demo
from experiments.plan import Builder, External, Graph
from layers.pair_generation import PAIRS
from networks import mtdnet as mtdnet_net
from networks.geng16 import LMDB_SIZE as GENG16_LMDB
from networks.mtdnet import LMDB_SIZE as MTDNET_LMDB
from networks import solver as schedules
from unsupervised import study


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


@dataclass(frozen=True)
class Experiment:
    """One row of a paper's table: `recipe` (a key of RECIPES) plans its
    stages from the other fields."""
    key: str
    recipe: str
    dataset: str          # the set the row reports (a key of SMALL_SETS for "small")
    papers: tuple         # the paper's rows it stands beside
    about: str
    base: str = "googlenet"
    pretrained: bool = True
    two_step: bool = True
    losses: tuple = None  # None: the net's own (SID + PV)
    dropout: str = None   # Table 5's "random" or "consistent" (None: the net's own)
    version: str = None   # CUHK03's "labeled" or "detected" boxes
    protocol: str = "single-shot"
    rows: tuple = ()      # the unsupervised study's models
    row: str = None       # MTDnet: a key of MTDNET_ROWS

    @property
    def label(self):
        return self.key.replace(" ", "_")

    def variant(self):
        """The net options the row sets (the others are the net's own)."""
        out = {}
        if self.losses is not None:
            out["losses"] = self.losses
        if self.dropout is not None:
            out["pv_dropout"] = self.dropout
        return out


# DGDNet has no public ImageNet model: its rows plan (--plan counts them)
# with this in the weights' place, and tools.reproduce refuses to run them
# without --imagenet.
NO_DGDNET_IMAGENET = "no-public-DGDNet-ImageNet-model"
NO_DGDNET_IMAGENET_TEXT = ("no public ImageNet model of DGDNet: give --imagenet W.caffemodel, "
                           "or take the row without ImageNet pretraining")


def _imagenet(b, opts, base):
    if base == "googlenet":
        return b.stage("weights", "bvlc_googlenet", opts.imagenet)
    return b.external(opts.imagenet) if opts.imagenet else External(NO_DGDNET_IMAGENET)


# ---- Geng16 -------------------------------------------------------------

SMALL_SETS = {"viper": ("viper", {}), "prid": ("prid2011", {}),
              "cuhk01_871": ("cuhk01", {"protocol": "871/100"}),
              "cuhk01_485": ("cuhk01", {"protocol": "485/486"})}
# Table 7's unlabelled targets: the split's name → its SMALL_SETS entry
UNSUPERVISED_SETS = {"viper": "viper", "prid": "prid", "cuhk01": "cuhk01_485"}


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
        train = b.stage("lmdb", split, "train", GENG16_LMDB[base], trial, opts.augment)
        models.append((trial, b.stage("geng16", "%s_t%d" % (name, trial), train, weights, schedule,
                                       two_step, base=base, **_fidelity(opts, variant, two_step))))
    return models


def geng16_large(b, opts, e):
    """ImageNet → a large set (CUHK03 / Market), Geng16 §5.3 "one-staged"."""
    split_kw = {"version": e.version} if e.version else {}
    sp = b.stage("split", e.dataset, name=e.dataset + "_" + (e.version or "std"), **split_kw)
    weights = _imagenet(b, opts, e.base) if e.pretrained else None
    models = _per_trial(b, opts, sp, e.dataset, weights, "large", e.two_step and e.pretrained,
                        e.base, e.variant())
    subsets = ["query", "gallery"] + (["multi_query"] if e.protocol == "market" else [])
    return [b.evaluate_geng16(e.label, models, sp, e.base, e.protocol, e.papers[0], subsets,
                              title=e.key)]


def geng16_merged(b, opts, base="googlenet", pretrained=True, variant=None):
    """ImageNet → CUHK03 + Market merged (Geng16 §5.3, the first of two
    stages); returns (merged split, model)."""
    cuhk03 = b.stage("split", "cuhk03", name="cuhk03_labeled")
    market = b.stage("split", "market1501", name="market1501_std")
    sp = b.stage("merge", "cuhk03_market1501", [cuhk03, market])
    train = b.stage("lmdb", sp, "train", GENG16_LMDB[base], 0, opts.augment)
    weights = _imagenet(b, opts, base) if pretrained else None
    return sp, b.stage("geng16", "large", train, weights, "large", pretrained, base=base,
                        **_fidelity(opts, variant or {}, pretrained))


def geng16_small(b, opts, e):
    """ImageNet → CUHK03 + Market → a small set (Geng16 §5.3, two stages)."""
    _, large = geng16_merged(b, opts, e.base, e.pretrained, e.variant())
    dataset, protocol = SMALL_SETS[e.dataset]
    sp = b.stage("split", dataset, name=e.dataset, **protocol)
    models = _per_trial(b, opts, sp, e.dataset, large, "small", e.two_step, e.base, e.variant())
    return [b.evaluate_geng16(e.label, models, sp, e.base, "single-shot", e.papers[0],
                              title=e.key)]


def geng16_unsupervised(b, opts, e):
    """ImageNet → CUHK03 + Market (supervised) → a small set without its
    labels (Geng16 §4.2, §5.4, §5.6; unsupervised/study.py)."""
    source, large = geng16_merged(b, opts)
    dataset, protocol = SMALL_SETS[UNSUPERVISED_SETS[e.dataset]]
    target = b.stage("split", dataset, name=e.dataset, **protocol)
    setup = study.setup_config(base="googlenet", iters="small", protocol="single-shot")
    table = e.key.split()[1]
    return [b.stage("unsupervised", e.label, large, source, target, setup, e.rows, table,
                           e.dataset if table == "table7" else None,
                           "Geng16 %s: unsupervised transfer to %s" % (table, e.dataset))]


def _geng16(key, recipe, dataset, paper, about, **kw):
    papers_ = (paper,) if isinstance(paper, str) else paper
    return Experiment("geng16 " + key, recipe, dataset, tuple("geng16:" + p for p in papers_),
                      about, **kw)


SID, PV, TL = ("sid",), ("pv",), ("tl",)
SID_PV, SID_TL, PV_TL, SID_PV_TL = ("sid", "pv"), ("sid", "tl"), ("pv", "tl"), ("sid", "pv", "tl")
MARKET = dict(protocol="market")
DGDNET = dict(base="dgdnet")
SCRATCH = dict(pretrained=False)

# Geng16's tables: key, recipe, dataset, the paper's row(s), what it is, and
# what the row sets (losses, dropout, base, pretraining, steps, protocol).
GENG16 = (
    _geng16("table1 labeled", "large", "cuhk03", "table1:Ours:manual",
            "ImageNet → CUHK03 labeled, two-stepped, SID + PV", version="labeled"),
    _geng16("table1 detected", "large", "cuhk03", "table1:Ours:detected",
            "ImageNet → CUHK03 detected, two-stepped, SID + PV", version="detected"),
    _geng16("table2", "large", "market1501", "table2:Ours",
            "ImageNet → Market-1501, two-stepped, SID + PV (single and multi query)", **MARKET),
    _geng16("table3 viper", "small", "viper", "table3:Ours:viper",
            "ImageNet → CUHK03 + Market → viper, two-stepped"),
    _geng16("table3 prid", "small", "prid", "table3:Ours:prid",
            "ImageNet → CUHK03 + Market → prid, two-stepped"),
    _geng16("table3 cuhk01_871", "small", "cuhk01_871", "table3:Ours:cuhk01_871",
            "ImageNet → CUHK03 + Market → cuhk01_871, two-stepped"),
    _geng16("table3 cuhk01_485", "small", "cuhk01_485", "table3:Ours:cuhk01_485",
            "ImageNet → CUHK03 + Market → cuhk01_485, two-stepped"),
    _geng16("table4 sid", "large", "market1501", "table4:SID",
            "ImageNet → Market-1501 with losses SID", losses=SID, **MARKET),
    _geng16("table4 pv", "large", "market1501", "table4:PV",
            "ImageNet → Market-1501 with losses PV", losses=PV, **MARKET),
    _geng16("table4 tl", "large", "market1501", "table4:TL",
            "ImageNet → Market-1501 with losses TL", losses=TL, **MARKET),
    _geng16("table4 sid_pv", "large", "market1501", "table4:SID + PV",
            "ImageNet → Market-1501 with losses SID + PV", losses=SID_PV, **MARKET),
    _geng16("table4 sid_tl", "large", "market1501", "table4:SID + TL",
            "ImageNet → Market-1501 with losses SID + TL", losses=SID_TL, **MARKET),
    _geng16("table4 pv_tl", "large", "market1501", "table4:PV + TL",
            "ImageNet → Market-1501 with losses PV + TL", losses=PV_TL, **MARKET),
    _geng16("table4 sid_pv_tl", "large", "market1501", "table4:SID + PV + TL",
            "ImageNet → Market-1501 with losses SID + PV + TL", losses=SID_PV_TL, **MARKET),
    _geng16("table5 sid_pv random market", "large", "market1501",
            "table5:SID + PV / Random:market1501", "Market-1501, SID + PV / Random",
            losses=SID_PV, dropout="random", **MARKET),
    _geng16("table5 sid_pv random viper", "small", "viper", "table5:SID + PV / Random:viper",
            "VIPeR, SID + PV / Random", losses=SID_PV, dropout="random"),
    _geng16("table5 sid_pv consistent market", "large", "market1501",
            "table5:SID + PV / Pairwise-consistent:market1501",
            "Market-1501, SID + PV / Pairwise-consistent", losses=SID_PV, dropout="consistent",
            **MARKET),
    _geng16("table5 sid_pv consistent viper", "small", "viper",
            "table5:SID + PV / Pairwise-consistent:viper", "VIPeR, SID + PV / Pairwise-consistent",
            losses=SID_PV, dropout="consistent"),
    _geng16("table5 sid_tl random market", "large", "market1501",
            "table5:SID + TL / Random:market1501", "Market-1501, SID + TL / Random",
            losses=SID_TL, dropout="random", **MARKET),
    _geng16("table5 sid_tl random viper", "small", "viper", "table5:SID + TL / Random:viper",
            "VIPeR, SID + TL / Random", losses=SID_TL, dropout="random"),
    _geng16("table5 sid_tl consistent market", "large", "market1501",
            "table5:SID + TL / Pairwise-consistent:market1501",
            "Market-1501, SID + TL / Pairwise-consistent", losses=SID_TL, dropout="consistent",
            **MARKET),
    _geng16("table5 sid_tl consistent viper", "small", "viper",
            "table5:SID + TL / Pairwise-consistent:viper", "VIPeR, SID + TL / Pairwise-consistent",
            losses=SID_TL, dropout="consistent"),
    _geng16("table6 one-stepped", "small", "viper", "table6:One-stepped",
            "ImageNet → CUHK03 + Market → VIPeR, one-stepped", two_step=False),
    _geng16("table6 two-stepped", "small", "viper", "table6:Two-stepped",
            "ImageNet → CUHK03 + Market → VIPeR, two-stepped"),
    _geng16("table8 market dgdnet sid imagenet", "large", "market1501",
            "table8:Market / DGDNet / SID / YES", "Market / DGDNet / SID / YES",
            losses=SID, **DGDNET, **MARKET),
    _geng16("table8 market dgdnet sid_pv imagenet", "large", "market1501",
            "table8:Market / DGDNet / SID + PV / YES", "Market / DGDNet / SID + PV / YES",
            losses=SID_PV, **DGDNET, **MARKET),
    _geng16("table8 viper dgdnet sid_pv imagenet", "small", "viper",
            "table8:VIPeR / DGDNet / SID + PV / YES", "VIPeR / DGDNet / SID + PV / YES",
            **DGDNET),
    _geng16("table8 market dgdnet sid scratch", "large", "market1501",
            "table8:Market / DGDNet / SID / NO", "Market / DGDNet / SID / NO",
            losses=SID, **DGDNET, **SCRATCH, **MARKET),
    _geng16("table8 market dgdnet sid_pv scratch", "large", "market1501",
            "table8:Market / DGDNet / SID + PV / NO", "Market / DGDNet / SID + PV / NO",
            losses=SID_PV, **DGDNET, **SCRATCH, **MARKET),
    _geng16("table8 viper dgdnet sid_pv scratch", "small", "viper",
            "table8:VIPeR / DGDNet / SID + PV / NO", "VIPeR / DGDNet / SID + PV / NO",
            **DGDNET, **SCRATCH),
    _geng16("table8 market googlenet sid imagenet", "large", "market1501",
            "table8:Market / GoogLeNet / SID / YES", "Market / GoogLeNet / SID / YES",
            losses=SID, **MARKET),
    _geng16("table8 market googlenet sid_pv imagenet", "large", "market1501",
            "table8:Market / GoogLeNet / SID + PV / YES", "Market / GoogLeNet / SID + PV / YES",
            losses=SID_PV, **MARKET),
    _geng16("table8 viper googlenet sid_pv imagenet", "small", "viper",
            "table8:VIPeR / GoogLeNet / SID + PV / YES", "VIPeR / GoogLeNet / SID + PV / YES"),
    _geng16("table8 market googlenet sid scratch", "large", "market1501",
            "table8:Market / GoogLeNet / SID / NO", "Market / GoogLeNet / SID / NO",
            losses=SID, **SCRATCH, **MARKET),
    _geng16("table8 market googlenet sid_pv scratch", "large", "market1501",
            "table8:Market / GoogLeNet / SID + PV / NO", "Market / GoogLeNet / SID + PV / NO",
            losses=SID_PV, **SCRATCH, **MARKET),
    _geng16("table8 viper googlenet sid_pv scratch", "small", "viper",
            "table8:VIPeR / GoogLeNet / SID + PV / NO", "VIPeR / GoogLeNet / SID + PV / NO",
            **SCRATCH),
    _geng16("table7 viper", "unsupervised", "viper", "table7:Ours:viper",
            "ImageNet → CUHK03 + Market → unlabelled viper, co-training", rows=("co_training",)),
    _geng16("table7 prid", "unsupervised", "prid", "table7:Ours:prid",
            "ImageNet → CUHK03 + Market → unlabelled prid, co-training", rows=("co_training",)),
    _geng16("table7 cuhk01", "unsupervised", "cuhk01", "table7:Ours:cuhk01",
            "ImageNet → CUHK03 + Market → unlabelled cuhk01, co-training",
            rows=("co_training",)),
    _geng16("table9", "unsupervised", "viper",
            tuple("table9:" + study.TABLE9[r] for r in study.ROWS if r in study.TABLE9),
            "Unsupervised alternatives on unlabelled VIPeR: self-training, subspace, AE, "
            "gradient reversal, co-training", rows=study.ROWS),
)


# ---- MTDnet -------------------------------------------------------------

MTDNET_SETS = {"cuhk03": ("cuhk03", {}), "cuhk01": ("cuhk01", {"protocol": "871/100"}),
               "viper": ("viper", {}), "ilids": ("ilids", {}), "prid2011": ("prid2011", {})}
# Table 1 row → (its name, training net, how the gallery is ranked)
MTDNET_ROWS = {"rnk": ("MTDnet-rnk", "mtdnet_rnk", "rnk"), "cls": ("MTDnet-cls", "mtdnet_cls", "cir"),
               "trp": ("MTDnet-trp", "mtdnet", "trp"), "mtdnet": ("MTDnet", "mtdnet", "cir"),
               "aug": ("MTDnet-aug", "mtdnet", "cir"), "cross": ("MTDnet-cross", "mtdnet_cross", "cir")}
# the transfer rows have CUHK03 for their source, not their target
MTDNET_TRANSFER = ("aug", "cross")


def _rnk_kw(opts, net):
    """The MTDnet-rnk reading (its net; its CaffeNet init follows the net's
    wiring, training/mtdnet_init.py)."""
    return {"rnk_net": opts.rnk_net} if net == "mtdnet_rnk" else {}


def mtdnet_cuhk03(b, opts, net, trial=0):
    """CaffeNet conv1–2 → CUHK03, 200K iterations (networks/solver.py)."""
    sp = b.stage("split", "cuhk03", name="cuhk03_labeled")
    train = b.stage("lmdb", sp, "train", MTDNET_LMDB, trial)
    caffenet = b.stage("weights", "bvlc_reference_caffenet", opts.caffenet)
    return sp, b.stage("mtdnet", "cuhk03_%s_t%d" % (net, trial), net, train,
                        schedules.MTDNET_CUHK03_ITERS, caffenet=caffenet, **_rnk_kw(opts, net))


def mtdnet_run(b, opts, e):
    _, net, test = MTDNET_ROWS[e.row]
    dataset = e.dataset
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
        sp = b.stage("split", name, name=dataset, **protocol)
        if e.row == "aug":
            sp = b.stage("merge", dataset + "_aug", [sp, cuhk03_sp], eval_from=0)
        aux = b.stage("lmdb", cuhk03_sp, "train", MTDNET_LMDB) if net == "mtdnet_cross" else None
        solver_kw = ({"base_lr": schedules.mtdnet_prid_lr(opts.prid_lr, net)}
                     if dataset == "prid2011" else None)
        for trial in range(opts.trials):
            train = b.stage("lmdb", sp, "train", MTDNET_LMDB, trial)
            models.append((trial, b.stage("mtdnet", "%s_%s_t%d" % (dataset, e.row, trial), net, train,
                                           schedules.MTDNET_SMALL_ITERS, weights=source, aux=aux,
                                           solver_kw=solver_kw, **_rnk_kw(opts, net))))
    return [b.evaluate_mtdnet("%s_t%d" % (e.label, trial), model,
                              b.stage("lmdb", sp, "query", MTDNET_LMDB, trial),
                              b.stage("lmdb", sp, "gallery", MTDNET_LMDB, trial), test, e.papers[0],
                              title="%s, trial %d" % (e.key, trial))
            for trial, model in models]


# MTDnet's Table 1: every row on every dataset, but the transfer rows on CUHK03
MTDNET = tuple(
    Experiment("mtdnet %s %s" % (dataset, row), "mtdnet", dataset,
               ("mtdnet:table1:%s:%s" % (label, dataset),), "%s on %s (%s)" % (label, dataset, net),
               row=row)
    for dataset in MTDNET_SETS for row, (label, net, _) in MTDNET_ROWS.items()
    if not (dataset == "cuhk03" and row in MTDNET_TRANSFER))

RECIPES = {"large": geng16_large, "small": geng16_small, "unsupervised": geng16_unsupervised,
           "mtdnet": mtdnet_run}


def experiments():
    """{key: Experiment} of every experiment known."""
    return {e.key: e for e in GENG16 + MTDNET}


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
DEMOS = {"demo": demo.stages, "demo unsupervised": demo.unsupervised_stages}


def graph(config):
    """The Graph of config["experiments"] (keys; "demo" is the demo's,
    experiments/demo.py) under config["options"]: data_root, scale, k, seed,
    data_cache, verify_data and the Options fields; config["run"] (gpu,
    snapshot_every, progress, BLAS) rides along for the jobs."""
    options = dict(config.get("options", {}))
    b = Builder(**{f.name: options.pop(f.name) for f in fields(Builder)
                   if f.name in options and f.init})
    opts = Options(**{f.name: options.pop(f.name) for f in fields(Options) if f.name in options})
    if options:
        raise ValueError("unknown workflow option(s): %s" % ", ".join(sorted(options)))
    g = Graph(config.get("run"))
    known = experiments()
    for key in config.get("experiments", []):
        if key in DEMOS:
            g.add(key, DEMOS[key](b, demo.Settings(**config.get("demo", {}))))
            continue
        e = find(key, known)
        check_options(key, opts)
        g.add(key, RECIPES[e.recipe](b, opts, e))
    return g
