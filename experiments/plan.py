"""The stage graph of the papers' experiments (issue 13). Every experiment
of `tools.reproduce --list` is a set of stages; a stage is one kind of work
(one rule of experiments/Snakefile) and the configuration that decides its
output. Its folder is named after that configuration and its inputs,
<kind>/<label>-<hash>, so that identical work across experiments and trials
(ImageNet → Market SID + PV in Tables 2, 4, 5 and 8; ImageNet → CUHK03 +
Market for every small set) is one stage made once, and whatever changes a
stage (--scale, --k, a fidelity option, another init) names another folder
instead of overwriting the first.

Building the graph reads no data and runs nothing: `reproduce --plan`
prints it before any cost, and the Snakefile takes its jobs from it.

    split        data_prep: a dataset's canonical split (synthetic: generated)
    merge        data_prep.merge: several splits as one (Geng16 §5.3)
    single_shot  one query and one gallery image per test person
    lmdb         data_prep.lmdb_builder: one subset of one trial
    weights      training.fetch_weights: a model zoo model
    geng16       one Geng16 transfer stage, one- or two-stepped (§4.1)
    mtdnet       one MTDnet training stage
    unsupervised Geng16 §4.2's study: every unsupervised model and its rounds
    features     the base's output features of a split's subsets
    scores       MTDnet CIR scores / ranking distances of a query set
    report       evaluation: results.md / results.json / index.html
"""
import hashlib
import inspect
import json
import os
from dataclasses import dataclass, field

from common import data_fingerprint
from evaluation.cir import MTDNET_TESTS, PASSES
from experiments.kinds import NAMES as KINDS, TRAINING
from networks import geng16 as geng16_net
from networks.geng16 import LMDB_SIZE as GENG16_LMDB
from networks import mtdnet as mtdnet_net
from networks.solver import scaled

HASH_CHARS = 12


def _jsonable(value):
    """Tuples as lists, so that a config hashes the same built or reloaded."""
    return json.loads(json.dumps(value, sort_keys=True))


@dataclass
class External:
    """An input that no stage makes: a dataset's folder or a weights file,
    with the fingerprint of its content (None where it is absent: a plan
    of data not at hand)."""
    path: str
    data: dict = None

    def key(self):
        """What a stage's name hashes: the content, not the path; the path
        where the content is not known."""
        return {"data": self.data["content"]} if self.data else self.path


@dataclass(eq=False)
class Stage:
    """One job of the workflow: `config` is everything that decides its
    output but its inputs, which are other stages or existing paths (a
    dataset's folder, a weights file); `label` only makes the name readable."""
    kind: str
    label: str
    config: dict
    inputs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError("unknown stage kind %r" % self.kind)
        self.config = _jsonable(self.config)
        self.inputs = {name: (i if isinstance(i, (Stage, External)) else
                              External(os.path.abspath(i)))
                       for name, i in self.inputs.items()}
        key = {"kind": self.kind, "config": self.config, "inputs": self.input_keys()}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()
        self.id = "%s-%s" % (self.label.replace("/", "_").replace(" ", "_"), digest[:HASH_CHARS])
        self.path = os.path.join(self.kind, self.id)

    def input_keys(self):
        """{input name: the stage's id, or the external input's key}."""
        return {name: (i.id if isinstance(i, Stage) else i.key())
                for name, i in sorted(self.inputs.items())}

    def stages(self):
        """This stage and every stage it depends on, each once, inputs first."""
        out, seen = [], set()

        def visit(stage):
            if stage.id in seen:
                return
            seen.add(stage.id)
            for i in stage.inputs.values():
                if isinstance(i, Stage):
                    visit(i)
            out.append(stage)
        visit(self)
        return out

    def external(self):
        """{name: External} of the inputs no stage makes."""
        return {name: i for name, i in self.inputs.items() if isinstance(i, External)}


class Graph:
    """The stages of a set of experiments, each once: {experiment key:
    [report stages]} and every stage by id."""

    def __init__(self, run=None):
        self.experiments = {}
        self.by_id = {}
        self.run = dict(run or {})   # how the jobs run (gpu, snapshot_every, progress)

    def add(self, key, reports):
        self.experiments[key] = list(reports)
        for report in self.experiments[key]:
            for stage in report.stages():
                self.by_id.setdefault(stage.id, stage)

    def by_path(self, path):
        kind, _, stage_id = path.partition("/")
        return self.get(kind, stage_id)

    def get(self, kind, stage_id):
        stage = self.by_id.get(stage_id)
        if stage is None or stage.kind != kind:
            raise LookupError("no %s stage %r in this workflow's plan" % (kind, stage_id))
        return stage

    def targets(self, keys=None):
        return [r.path for k in (keys or self.experiments) for r in self.experiments[k]]

    def to_json(self):
        """The graph as the workflow's config carries it to every job: the
        stages inputs first, each with its id; the experiments' reports."""
        order = {}
        for reports in self.experiments.values():
            for report in reports:
                for s in report.stages():
                    order.setdefault(s.id, s)
        order = list(order.values())
        return {"stages": [{"kind": s.kind, "label": s.label, "id": s.id, "config": s.config,
                            "inputs": {n: ({"stage": i.id} if isinstance(i, Stage) else
                                           {"path": i.path, "data": i.data})
                                       for n, i in s.inputs.items()}} for s in order],
                "experiments": {k: [r.id for r in rs] for k, rs in self.experiments.items()},
                "run": self.run}

    @classmethod
    def from_json(cls, doc):
        """The graph to_json wrote, each stage keeping its id: a job runs the
        stage the command planned, whatever the recipes' code says now."""
        g = cls(doc.get("run"))
        for item in doc["stages"]:
            stage = Stage.__new__(Stage)
            stage.kind, stage.label, stage.config = item["kind"], item["label"], item["config"]
            stage.inputs = {n: (g.by_id[i["stage"]] if "stage" in i else External(**i))
                            for n, i in item["inputs"].items()}
            stage.id, stage.path = item["id"], os.path.join(item["kind"], item["id"])
            g.by_id[stage.id] = stage
        g.experiments = {k: [g.by_id[i] for i in ids] for k, ids in doc["experiments"].items()}
        return g


# ---- cost ---------------------------------------------------------------

def _geng16_images(net):
    return net.get("k", geng16_net.K) * net.get("m", geng16_net.M)


def _mtdnet_images(variant, net):
    # a batch of triplets; the cross net reads a second batch from the source set
    return 3 * net.get("batch", mtdnet_net.BATCH) * (2 if variant == "mtdnet_cross" else 1)


def training_cost(stage):
    """(iterations, images) a training stage trains at its scale: Geng16's
    steps, MTDnet's schedule, the unsupervised study's Geng16 fine-tunings
    (every round of self- and co-training and the gradient-reversal model;
    the autoencoder's iterations are on features, not images, and not
    counted); (0, 0) for other stages."""
    c = stage.config
    if stage.kind == "geng16":
        steps = c["iters"] if c["two_step"] else c["iters"][1:]
        iters = sum(scaled(i, c["scale"]) for i in steps)
        return iters, iters * _geng16_images(c["net"])
    if stage.kind == "mtdnet":
        iters = scaled(c["iters"], c["scale"])
        return iters, iters * _mtdnet_images(c["variant"], c["net"])
    if stage.kind == "unsupervised":
        per_round = sum(scaled(i, c["scale"]) for i in c["iters"])
        rounds = sum(c["rounds"].get(row, 0) for row in c["rows"])
        rounds += 1 if "adversarial" in c["rows"] else 0
        iters = rounds * per_round
        return iters, iters * _geng16_images({"k": c["k"]} if c.get("k") else {})
    return 0, 0


def totals(stages):
    """{"stages", "training stages", "iterations", "images"} of a set of stages."""
    costs = [training_cost(s) for s in stages]
    return {"stages": len(stages), "training stages": sum(s.kind in TRAINING for s in stages),
            "iterations": sum(c[0] for c in costs), "images": sum(c[1] for c in costs)}


def summary(graph, keys=None):
    """The cost of `keys` (default: all of the graph's experiments) with
    stages shared, as this workflow runs them, and as one run directory per
    experiment trains them (each experiment's own stages, shared only within
    it)."""
    keys = list(keys or graph.experiments)
    shared, own = {}, []
    for key in keys:
        mine = {s.id: s for r in graph.experiments[key] for s in r.stages()}
        shared.update(mine)
        own.append(totals(list(mine.values())))
    separate = {name: sum(t[name] for t in own) for name in own[0]} if own else totals([])
    return {"experiments": len(keys), "shared": totals(list(shared.values())),
            "separate": separate, "stages": list(shared.values())}


def plan_text(graph, keys=None, status=None):
    """What `reproduce --plan` prints: the distinct stages (each with
    `status`'s word on it, {id: text}, where given), then the totals with
    sharing and without."""
    s = summary(graph, keys)
    status = status or {}
    lines = ["%d experiment(s), %d distinct stages:" % (s["experiments"], len(s["stages"]))]
    for stage in sorted(s["stages"], key=lambda st: (KINDS.index(st.kind), st.id)):
        iters, images = training_cost(stage)
        cost = "  %s iterations, %s images" % (format(iters, ","), format(images, ",")) if iters else ""
        word = "  [%s]" % status[stage.id] if stage.id in status else ""
        lines.append("  %-12s %s%s%s" % (stage.kind, stage.id, cost, word))
    a, b = s["shared"], s["separate"]
    lines.append("Training with stages shared (this workflow): %d stages, %s iterations, %s images"
                 % (a["training stages"], format(a["iterations"], ","), format(a["images"], ",")))
    lines.append("One run directory per experiment (before): %d stages, %s iterations, %s images"
                 % (b["training stages"], format(b["iterations"], ","), format(b["images"], ",")))
    if a["iterations"]:
        lines.append("Sharing trains %.2f x fewer iterations." % (b["iterations"] / a["iterations"]))
    return "\n".join(lines)


# ---- building a graph ---------------------------------------------------

# A net's arguments the stage sets from its inputs when it runs.
RUN_TIME_ARGS = ("data", "source", "aux_source", "num_ids")


def full_arguments(fn, given):
    """`given` with every other argument of the net generator `fn` at its
    default: one net, one configuration, however a recipe spelled it (Table
    2's implicit SID + PV and Table 4's explicit one are one stage)."""
    params = inspect.signature(fn).parameters
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ValueError("%s takes no argument %s" % (fn.__name__, ", ".join(unknown)))
    out = {name: p.default for name, p in params.items()
           if name not in RUN_TIME_ARGS and p.default is not inspect.Parameter.empty}
    out.update(given)
    return out


@dataclass
class Builder:
    """Plans stages the way an experiment's recipe asks for them. `scale`
    multiplies every iteration count of the papers' schedules (1 = the
    paper's); `data_root` holds each dataset as <data_root>/<dataset>/; `k`
    shrinks Geng16's batch; `seed` fixes Caffe's fillers and data order."""
    data_root: str
    scale: float = 1.0
    k: int = None
    seed: int = None
    data_cache: str = None      # the store's fingerprint cache (common/data_fingerprint.py)
    verify_data: bool = False   # hash every file's content, whatever the cache knows
    _known: dict = field(default_factory=dict, repr=False, compare=False)

    def external(self, path):
        """`path` as an External input, its content fingerprinted once per
        Builder (None where it does not exist)."""
        path = os.path.abspath(path)
        if path not in self._known:
            data = None
            if os.path.exists(path):
                data = data_fingerprint.fingerprint(
                    path, data_fingerprint.Cache(self.data_cache), self.verify_data)
            self._known[path] = External(path, data)
        return self._known[path]

    def split(self, dataset, root=None, name=None, **protocol):
        """The split of `dataset` (data_prep's parser, `protocol` its options);
        the synthetic generator's split has no input folder: the stage makes
        its images."""
        inputs = {} if dataset == "synthetic" else {
            "root": self.external(root or os.path.join(self.data_root, dataset))}
        return Stage("split", name or dataset, {"dataset": dataset, "protocol": protocol}, inputs)

    def merged(self, name, splits, eval_from=None):
        return Stage("merge", name, {"eval_from": eval_from},
                     {"split%d" % i: s for i, s in enumerate(splits)})

    def single_shot(self, split, name, trial=0, seed=0):
        return Stage("single_shot", name, {"trial": trial, "seed": seed}, {"split": split})

    def lmdb(self, split, subset, size, trial=0, augment=0):
        return Stage("lmdb", "%s_t%d_%s" % (split.label, trial, subset),
                     {"subset": subset, "size": size, "trial": trial, "augment": augment},
                     {"split": split})

    def weights(self, name, path=None):
        """A model zoo model (fetched by its stage), or the file given."""
        return self.external(path) if path else Stage("weights", name, {"name": name})

    def geng16(self, label, train, weights=None, schedule="large", two_step=True, solver_kw=None,
               **net_kw):
        if self.k:   # the command's --k, where the recipe sets none
            net_kw.setdefault("k", self.k)
        step1_pv = net_kw.pop("step1_pv", False)  # training/two_step's, not the net generator's
        net_kw = dict(full_arguments(geng16_net.geng16, net_kw), step1_pv=step1_pv)
        iters = geng16_net.SCHEDULES[schedule] if isinstance(schedule, str) else schedule
        if net_kw.get("step1_pv") and not two_step:
            raise ValueError("step1_pv: one-stepped fine-tuning has no step 1")
        if two_step and weights is None:
            raise ValueError("two-stepped fine-tuning needs the previous stage's weights "
                             "(step 1 trains the classifier on fixed features)")
        inputs = {"train": train}
        if weights is not None:
            inputs["weights"] = weights
        return Stage("geng16", label, {"net": net_kw, "iters": iters, "two_step": two_step,
                                       "scale": self.scale, "seed": self.seed,
                                       "solver": solver_kw or {}}, inputs)

    def mtdnet(self, label, variant, train, iters, caffenet=None, weights=None, aux=None,
               solver_kw=None, **net_kw):
        net_kw = full_arguments(mtdnet_net.TRAIN_NETS[variant], net_kw)
        inputs = {"train": train}
        for name, value in (("caffenet", caffenet), ("weights", weights), ("aux", aux)):
            if value is not None:
                inputs[name] = value
        return Stage("mtdnet", label, {"variant": variant, "net": net_kw, "iters": iters,
                                       "scale": self.scale, "seed": self.seed,
                                       "solver": solver_kw or {}}, inputs)

    def features(self, model, split, base, subsets, trial=0, size=None, resize=None):
        """The base's output features (Geng16 §4.1) of a split's subsets.
        `size`: the input the model was trained at (default: the base's);
        images are resized to `resize` (default: the training LMDB's) and
        centre-cropped, as the data layer crops."""
        if size is None:
            resize = resize or GENG16_LMDB[base]
        return Stage("features", "%s_t%d" % (model.label, trial),
                     {"base": base, "subsets": subsets, "trial": trial, "size": size,
                      "resize": resize}, {"weights": model, "split": split})

    def report(self, label, sources, protocol, title, paper=None, matrix_key=None, similarity=False):
        """An evaluation report of features (one per trial: mean ± std) or of
        one score matrix, beside the paper's row `paper`."""
        return Stage("report", label, {"protocol": protocol, "title": title, "paper": paper,
                                       "key": matrix_key, "similarity": similarity},
                     {"source%d" % i: s for i, s in enumerate(sources)})

    def evaluate_geng16(self, label, models, split, base="googlenet", protocol="single-shot",
                        paper=None, subsets=("query", "gallery"), size=None, resize=None,
                        title=None):
        """Features of each trial's model, `models` = [(trial, stage)] → one report."""
        files = [self.features(m, split, base, list(subsets), trial, size, resize)
                 for trial, m in models]
        return self.report(label, files, protocol, title or label, paper)

    def evaluate_mtdnet(self, label, model, query, gallery, test="cir", paper=None, size=None,
                        passes=PASSES, title=None):
        """MTDnet's test (`test`: a key of MTDNET_TESTS) → a single-shot report."""
        key, feature = MTDNET_TESTS[test]
        if model.config["variant"] == "mtdnet_cls":
            feature = None  # a classification-only model has no ranking feature to share
        scores = Stage("scores", "%s_%s" % (model.label, query.label),
                       {"passes": passes, "feature": feature, "size": size},
                       {"weights": model, "query": query, "gallery": gallery})
        return self.report(label, [scores], "single-shot", title or label, paper, key, test == "cir")

    def unsupervised(self, label, large, source, target, setup, rows, table, setting, title):
        """Geng16 §4.2's study from the large-set model `large`."""
        setup = dict(setup, scale=self.scale, seed=self.seed,
                     k=self.k if setup.get("k") is None else setup["k"])
        return Stage("unsupervised", label, dict(setup, rows=list(rows), table=table,
                                                 setting=setting, title=title),
                     {"large": large, "source": source, "target": target})
