"""The code that decides a result, as a fingerprint: which of the
project's modules a computation runs, each by a digest of what it does.

A module's digest is the SHA-1 of its syntax tree with docstrings removed
(`ast.dump` without positions), so comments, docstrings and formatting do
not count and every other change does. The modules a computation runs are
found, not listed by hand: the project's modules that its entry modules
import, transitively (an import inside a function counts too), plus the
Python layers a net's prototxt names in its `python_param { module: … }`
(Caffe imports those itself) and what they import.

A module that cannot change any number the package computes (progress
bars, error wording, provenance, drawings, the planning of stages, whose
configuration decides instead) says so with a top-level
`DECIDES_RESULTS = False`: its digest is left out, and so is what only it
imports (what it imports serves what it does).
"""
import ast
import functools
import hashlib
import os
import re

from common.config import ROOT

NEUTRAL_FLAG = "DECIDES_RESULTS"
DECIDES_RESULTS = False   # a fingerprint's bookkeeping, not a computation
_PYTHON_MODULE = re.compile(r'^\s*module:\s*"([A-Za-z_][\w.]*)"', re.M)


def module_file(name, root=ROOT):
    """The file of the project module `name` (a.b: a/b.py or a/b/__init__.py),
    or None where it is not the project's (numpy, caffe, a missing one)."""
    base = os.path.join(root, *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def module_name(path, root=ROOT):
    rel = os.path.relpath(os.path.abspath(path), root)[:-len(".py")]
    parts = rel.split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _without_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _neutral(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and node.value.value is False \
                and any(isinstance(t, ast.Name) and t.id == NEUTRAL_FLAG for t in node.targets):
            return True
    return False


def _imports(tree, name, is_package, root):
    """(modules `tree` — module `name` — imports, the packages above them).
    Importing a.b runs a/__init__.py too, so a parent counts by its own code;
    what a parent imports is followed only where it is imported itself."""
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # `from pkg import mod` imports the module pkg.mod; `from pkg
            # import name`, a name of pkg itself
            for alias in node.names:
                sub = "%s.%s" % (target, alias.name)
                found.add(sub if module_file(sub, root) else target)
    parents = set()
    for full in found:
        parts = full.split(".")
        parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found, parents - found


@functools.lru_cache(maxsize=None)
def _parsed(path, mtime_ns, size):
    """(digest or None when neutral, modules imported, their parent
    packages) of one module file."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    neutral = _neutral(tree)
    root = _root_of(path)
    imports, parents = _imports(tree, module_name(path, root),
                                os.path.basename(path) == "__init__.py", root)
    dump = ast.dump(_without_docstrings(tree), include_attributes=False)
    return ((None if neutral else hashlib.sha1(dump.encode()).hexdigest()), frozenset(imports),
            frozenset(parents))


def _root_of(path):
    """The checkout a module file lies in: the first folder above its
    packages (those with an __init__.py)."""
    folder = os.path.dirname(path)
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder = os.path.dirname(folder)
    return folder


def _module(path):
    st = os.stat(path)
    return _parsed(os.path.abspath(path), st.st_mtime_ns, st.st_size)


def imported_modules(path):
    """The project modules a module file imports (anywhere in it)."""
    return set(_module(path)[1])


def module_digest(path):
    """The digest of one module file (None for a module that says it decides
    no result)."""
    return _module(path)[0]


def python_layer_modules(net_text):
    """The modules a prototxt's Python layers name (`python_param.module`)."""
    return sorted(set(_PYTHON_MODULE.findall(net_text)))


def closure(modules, root=ROOT):
    """Every project module that `modules` (names) run: themselves and all
    they import, transitively (but not through a module that decides no
    result), and the packages above each; {name: file}."""
    followed, seen = set(), {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in followed:
            continue
        followed.add(name)
        path = module_file(name, root)
        if path is None:
            continue
        _, imports, parents = _module(path)
        parts = name.split(".")
        for parent in [".".join(parts[:i]) for i in range(1, len(parts))] + sorted(parents):
            where = module_file(parent, root)
            if where:
                seen.setdefault(parent, where)
        seen[name] = path
        if _module(path)[0] is not None:
            todo.extend(imports - followed)
    return seen


def fingerprint(modules, root=ROOT):
    """{module file relative to the checkout: digest} of everything `modules`
    run that decides results: what a stage records and compares."""
    out = {}
    for name, path in closure(modules, root).items():
        digest = module_digest(path)
        if digest is not None:
            out[os.path.relpath(path, root)] = digest
    return dict(sorted(out.items()))


def changed(made, now):
    """The module files whose digest differs between two fingerprints
    (added, removed or edited), sorted."""
    return sorted(k for k in set(made) | set(now) if made.get(k) != now.get(k))
