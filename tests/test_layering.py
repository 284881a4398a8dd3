"""The packages import one way, as the pipeline reads (data_prep → layers +
networks → training → evaluation → steps → unsupervised → experiments →
tools), and no module imports itself back through others: an import
anywhere in a module counts, inside a function too."""
import os

from common.code_fingerprint import imported_modules, module_name
from common.config import ROOT

# A package imports only from packages of a lower rank (and itself).
RANK = {"common": 0, "caffe_build": 0, "data_prep": 1, "layers": 2, "networks": 3,
        "training": 4, "evaluation": 5, "steps": 6, "unsupervised": 7, "experiments": 8,
        "tools": 9}


def graph():
    files = {}
    for package in RANK:
        for folder, _, names in os.walk(os.path.join(ROOT, package)):
            files.update({module_name(os.path.join(folder, n)): os.path.join(folder, n)
                          for n in names if n.endswith(".py")})
    return {name: {m for m in imported_modules(path) if m in files and m != name}
            for name, path in files.items()}


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_packages_import_only_from_below():
    upward = sorted((a, b) for a, targets in graph().items() for b in targets
                    if RANK[b.split(".")[0]] > RANK[a.split(".")[0]])
    assert upward == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    edges = {"data_prep.a": {"training.b"}, "training.b": {"data_prep.a"}}
    assert cycles(edges) == [["data_prep.a", "training.b"]]
    assert "experiments.workflow" in graph()["tools.reproduce"]
