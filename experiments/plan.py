"""The stage graph of the papers' experiments. Every experiment of
`tools.reproduce --list` is a set of stages; a stage is one kind of work
(experiments/kinds/<kind>.py, one rule of experiments/Snakefile) and the
configuration that decides its output. Its folder is named after that
configuration and its inputs, <kind>/<label>-<hash>, so that identical work
across experiments and trials (ImageNet → Market SID + PV in Tables 2, 4, 5
and 8; ImageNet → CUHK03 + Market for every small set) is one stage made
once, and whatever changes a stage (--scale, --k, a fidelity option,
another init, other data) names another folder instead of overwriting the
first.

Building the graph runs nothing and reads no data but the datasets'
fingerprints: `reproduce --plan` prints it before any cost, and the
Snakefile takes its jobs from it. Each kind's module plans its stages
(`Builder.stage`).
"""
import hashlib
import inspect
import json
import os
from dataclasses import dataclass, field

from common import data_fingerprint
from evaluation.cir import MTDNET_TESTS, PASSES
from experiments import kinds
from experiments.kinds import NAMES as KINDS, TRAINING

# Plans stages: what a stage computes is decided by its configuration and
# inputs (its name), not by this module (common/code_fingerprint.py).
DECIDES_RESULTS = False
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

def training_cost(stage):
    """(iterations, images) a training stage trains at its scale (its
    kind's `cost`); (0, 0) for other stages."""
    module = kinds.get(stage.kind)
    return module.cost(stage.config) if hasattr(module, "cost") else (0, 0)


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

    def stage(self, kind, *args, **kwargs):
        """A stage of `kind` as its module plans it (experiments/kinds/<kind>.py
        `plan`), under this Builder's settings."""
        return kinds.get(kind).plan(self, *args, **kwargs)

    def evaluate_geng16(self, label, models, split, base="googlenet", protocol="single-shot",
                        paper=None, subsets=("query", "gallery"), size=None, resize=None,
                        title=None):
        """Features of each trial's model, `models` = [(trial, stage)] → one report."""
        files = [self.stage("features", m, split, base, list(subsets), trial, size, resize)
                 for trial, m in models]
        return self.stage("report", label, files, protocol, title or label, paper)

    def evaluate_mtdnet(self, label, model, query, gallery, test="cir", paper=None, size=None,
                        passes=PASSES, title=None):
        """MTDnet's test (`test`: a key of MTDNET_TESTS) → a single-shot report."""
        key, feature = MTDNET_TESTS[test]
        if model.config["variant"] == "mtdnet_cls":
            feature = None  # a classification-only model has no ranking feature to share
        scores = self.stage("scores", model, query, gallery, passes, feature, size)
        return self.stage("report", label, [scores], "single-shot", title or label, paper, key,
                          test == "cir")
