"""What decides a stage's result, and therefore whether a stage already in
the store is reused or made again: one decision, taken here before anything
runs, that the workflow then carries out.

A stage's *causes* are
    id          its configuration and inputs (experiments/plan.py names the
                folder after them: the dataset by the fingerprint of its
                content, other stages by their ids)
    code        the fingerprint of the modules it runs (common/code_fingerprint.py:
                its kind's module, what that imports, the Python layers its
                nets name; comments, docstrings and formatting do not count)
    caffe       the Caffe build, for the kinds that run Caffe
    arithmetic  the BLAS threads and kernels, for the same kinds

A stage is *reused* when its folder exists and the record its job wrote on
completion holds the same causes, and no stage it reads is made again; it
*runs* otherwise, for the reasons `decide` names:
    new         no folder (another configuration or other data make another
                folder: the reason then says which differs from the nearest
                stage of the same label)
    incomplete  a folder without a record (interrupted, killed, or made
                before records were kept)
    code        the modules whose code changed
    caffe       another Caffe build
    arithmetic  other BLAS threads or kernels
    input       a stage it reads runs
    asked       --recompute
"""
import functools
import json
import os
from dataclasses import dataclass, field

from common import code_fingerprint
from common import provenance
from experiments import kinds, store as stores
from experiments.arithmetic import arithmetic
from experiments.plan import Stage, training_cost

REASONS = ("new", "incomplete", "code", "caffe", "arithmetic", "input", "asked")


@functools.lru_cache(maxsize=None)
def _code(kind, config_text):
    return code_fingerprint.fingerprint(kinds.code(kind, json.loads(config_text)))


def code_of(stage):
    """The code fingerprint of a stage: {module file: digest}."""
    return _code(stage.kind, json.dumps(stage.config, sort_keys=True))


@functools.lru_cache(maxsize=1)
def _caffe():
    build = provenance.caffe_build()
    return {k: build.get(k) for k in ("variant", "key", "source")}


def causes(stage, arithmetic):
    """The causes of `stage` now (see the module docstring); `arithmetic`:
    the environment its Caffe jobs run in."""
    uses_caffe = kinds.get(stage.kind).USES_CAFFE
    return {"kind": stage.kind, "id": stage.id, "config": stage.config,
            "inputs": stage.input_keys(), "code": code_of(stage),
            "caffe": _caffe() if uses_caffe else None,
            "arithmetic": arithmetic if uses_caffe else None}


@dataclass
class Decision:
    stage: Stage
    reasons: list = field(default_factory=list)   # [(reason, detail)]; empty: reused

    @property
    def runs(self):
        return bool(self.reasons)


def _nearest(store, stage):
    """The record of another stage of the same kind and label in the
    store, the most recently made: what this new stage differs from."""
    folder = os.path.join(store, stores.RECORDS, stage.kind)
    label = stage.id.rpartition("-")[0]
    best = None
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        if name.rpartition("-")[0] == label and name != stage.id + ".json":
            path = os.path.join(folder, name)
            if best is None or os.path.getmtime(path) > os.path.getmtime(best):
                best = path
    if best is None:
        return None
    with open(best) as f:
        return json.load(f)


def _first_difference(old, new, prefix=""):
    """"key.sub: old → new" of the first difference between two values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key),
                                         "%s.%s" % (prefix, key) if prefix else key)
        return None
    return "%s: %s → %s" % (prefix, json.dumps(old), json.dumps(new))


def _why_new(store, stage):
    """What makes a new stage new: its configuration, its data, or an input
    stage that is itself another one, against its nearest neighbour."""
    old = _nearest(store, stage)
    if old is None:
        return "new", "not made before"
    if old.get("config") != stage.config:
        return "new", "configuration %s" % _first_difference(old.get("config"), stage.config)
    inputs = stage.input_keys()
    for name in sorted(inputs):
        was = (old.get("inputs") or {}).get(name)
        if was != inputs[name]:
            if isinstance(inputs[name], dict):
                return "new", "data %s changed (%s)" % (stage.inputs[name].path, name)
            return "new", "input %s is another stage" % name
    return "new", "not made before"


def decide(store, graph, targets=None):
    """[Decision] for every stage the targets need (default: every
    experiment's reports), inputs first."""
    env = arithmetic(graph.run)
    wanted = targets if targets is not None else graph.targets()
    order, seen = [], set()
    for path in wanted:
        for stage in graph.by_path(path).stages():
            if stage.id not in seen:
                seen.add(stage.id)
                order.append(stage)
    decisions, running = [], set()
    for stage in order:
        reasons = []
        if not os.path.isdir(os.path.join(store, stage.path)):
            reasons.append(_why_new(store, stage))
        else:
            made = stores.read_record(store, stage)
            if made is None:
                reasons.append(("incomplete", "a folder without a record of completion"))
            else:
                now = causes(stage, env)
                code = code_fingerprint.changed(made.get("code") or {}, now["code"])
                if code:
                    reasons.append(("code", ", ".join(code)))
                if made.get("caffe") != now["caffe"]:
                    reasons.append(("caffe", "Caffe build %s → %s" % (
                        (made.get("caffe") or {}).get("key"), (now["caffe"] or {}).get("key"))))
                if made.get("arithmetic") != now["arithmetic"]:
                    reasons.append(("arithmetic", _first_difference(made.get("arithmetic"),
                                                                    now["arithmetic"])))
        upstream = [i for i in stage.inputs.values() if isinstance(i, Stage) and i.id in running]
        if upstream:
            reasons.append(("input", ", ".join(i.path for i in upstream)))
        if reasons:
            running.add(stage.id)
        decisions.append(Decision(stage, reasons))
    return decisions


def describe(decision):
    """"reused", or "run: reason (detail); …" of one stage."""
    if not decision.runs:
        return "reused"
    return "run: " + "; ".join("%s (%s)" % r for r in decision.reasons)


def summary(decisions, per_stage=False):
    """What will run and why, before it runs: one line per reason (with the
    stages and training iterations it costs), or one line per stage."""
    run = [d for d in decisions if d.runs]
    iters = sum(training_cost(d.stage)[0] for d in run)
    lines = ["%d stage(s): %d reused, %d to run (%s training iterations)"
             % (len(decisions), len(decisions) - len(run), len(run), format(iters, ","))]
    if per_stage:
        lines += ["  %-12s %-44s %s" % (d.stage.kind, d.stage.id, describe(d)) for d in decisions]
        return lines
    groups = {}
    for d in run:
        reason, detail = d.reasons[0]
        key = (reason, detail if reason in ("code", "caffe", "arithmetic", "asked") else "")
        groups.setdefault(key, []).append(d.stage)
    for (reason, detail), stages in sorted(groups.items(), key=lambda kv: REASONS.index(kv[0][0])):
        cost = sum(training_cost(s)[0] for s in stages)
        kinds_text = ", ".join("%d %s" % (n, k) for k, n in _count_kinds(stages))
        lines.append("  %s%s: %s%s" % (reason, " (%s)" % detail if detail else "", kinds_text,
                                      ", %s iterations" % format(cost, ",") if cost else ""))
    return lines


def _count_kinds(stages):
    counts = {}
    for s in stages:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    return sorted(counts.items(), key=lambda kv: kinds.NAMES.index(kv[0]))
