"""One module per kind of stage of the experiments' workflow, each the one
definition of that kind:

    plan(b, ...)        its configuration and inputs: the Stage a recipe
                        asks for, under a plan.Builder's settings
    MAIN                the file of its folder the next stage reads
    USES_CAFFE, MEM_MB  whether it runs Caffe; the memory a scheduler
                        reserves for it
    code(config)        (optional) the modules its configuration makes it
                        run beside its own, such as the Python layers its
                        nets name: with its own imports, the code that
                        decides its result (experiments/causes.py)
    cost(config)        (optional) the (iterations, images) it trains
    check(stage, files) (optional) what its inputs must satisfy, checked
                        before any of its work
    run(stage, files, out, work, settings)
                        makes the stage's folder `out` from its inputs'
                        files (training keeps its snapshots in `work`)

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
