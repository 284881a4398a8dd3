"""One module per kind of stage of the experiments' workflow, each the one
definition of that kind: the file the next stage reads (`MAIN`), whether it
runs Caffe (`USES_CAFFE`), the memory a scheduler reserves for it
(`MEM_MB`), the modules whose code decides its result beside its own (an
optional `code(config)`: what its configuration makes it run, such as the
Python layers its nets name), an optional `check(stage, files)` of what its
inputs must satisfy, run before any work, and `run(stage, files, out,
work, settings)`, which makes the stage's folder `out` from its inputs'
files (training keeps its snapshots in `work`).

Kinds are found by name, so that a kind's code fingerprint holds its own
imports and not every other kind's."""
import importlib

NAMES = ("split", "merge", "single_shot", "lmdb", "weights", "geng16", "mtdnet", "unsupervised",
         "features", "scores", "report")
TRAINING = ("geng16", "mtdnet", "unsupervised")


def get(name):
    """The module of kind `name` (one of NAMES)."""
    if name not in NAMES:
        raise ValueError("unknown stage kind %r; known: %s" % (name, ", ".join(NAMES)))
    return importlib.import_module("%s.%s" % (__name__, name))


def code(name, config):
    """The modules a stage of kind `name` with `config` runs, to follow for
    its code fingerprint: the kind's own, and what its configuration adds."""
    module = get(name)
    return [module.__name__] + (module.code(config) if hasattr(module, "code") else [])


def main_file(name, folder):
    """The file of a stage's folder that the next stage reads (the folder
    itself where it is an LMDB or a report)."""
    main = get(name).MAIN
    return "%s/%s" % (folder, main) if main else folder
