"""What each rule of experiments/Snakefile does: one function per kind of
stage (experiments/plan.py), from the stage's configuration and its inputs'
folders into its output folder. Each calls the library's plain functions;
training runs in the stage's work folder (snapshots, logs), which outlives a
failed job so that the next run resumes it, and publishes its final model
into the output.

Snakemake has decided that the job runs (its output is missing or its
params, code or inputs changed), so a record inside a work folder that
differs is remade, not refused (`recompute`)."""
import json
import os
import shutil

from common import provenance
from common.atomic import write_text

SPLIT = "split.json"
MODEL = "final.caffemodel"
FEATURES = "features.npz"
SCORES = "scores.npz"
STAGE = "stage.json"
# The file of a stage's folder that the next stage reads (None: the folder
# itself, an LMDB or a report).
MAIN_FILE = {"split": SPLIT, "merge": SPLIT, "single_shot": SPLIT, "lmdb": None,
             "weights": MODEL, "geng16": MODEL, "mtdnet": MODEL, "unsupervised": None,
             "features": FEATURES, "scores": SCORES, "report": None}


def main_file(kind, folder):
    name = MAIN_FILE[kind]
    return os.path.join(folder, name) if name else folder


def _files(stage, inputs):
    """{input name: the file to read}: a stage's main file, or the path given."""
    from experiments.plan import Stage
    return {name: (main_file(i.kind, inputs[name]) if isinstance(i, Stage) else inputs[name])
            for name, i in stage.inputs.items()}


def _context(stage, work, run):
    """The library's stage context (experiments/stages.py) rooted at the
    work folder's parent, its stage named by the work folder."""
    from experiments.stages import Context
    c = stage.config
    return Context(os.path.dirname(os.path.abspath(work)), scale=c.get("scale", 1.0),
                   gpu=run.get("gpu"), seed=c.get("seed"), progress=run.get("progress", True),
                   snapshot_every=run.get("snapshot_every", 1000), recompute=True)


def _publish(model, work, out, extra=None):
    """The final model of a training work folder into the output folder
    (a hard link where the filesystem allows), with where it was trained."""
    os.makedirs(out, exist_ok=True)
    target = os.path.join(out, MODEL)
    try:
        os.link(model, target)
    except OSError:
        shutil.copyfile(model, target)
    write_text(os.path.join(out, STAGE), json.dumps(dict(
        extra or {}, work=os.path.relpath(os.path.abspath(work))), indent=1) + "\n")


def split(stage, files, out, work, run):
    import data_prep
    c = stage.config
    os.makedirs(out, exist_ok=True)
    # the synthetic set's images (and CUHK03's extracted PNGs, beside the
    # split file) live in the stage's folder
    root = os.path.join(out, "images") if c["dataset"] == "synthetic" else files["root"]
    data_prep.make_split(c["dataset"], os.path.abspath(root), out=os.path.join(out, SPLIT),
                         **c["protocol"])


def merge(stage, files, out, work, run):
    import data_prep
    os.makedirs(out, exist_ok=True)
    data_prep.merge_splits([files["split%d" % i] for i in range(len(files))],
                           out=os.path.join(out, SPLIT), eval_from=stage.config["eval_from"])


def single_shot(stage, files, out, work, run):
    from data_prep.split_format import load_split, save_split
    from experiments.stages import single_shot_split
    os.makedirs(out, exist_ok=True)
    save_split(single_shot_split(load_split(files["split"]), stage.config["trial"],
                                 stage.config["seed"]), os.path.join(out, SPLIT))


def lmdb(stage, files, out, work, run):
    from data_prep.lmdb_builder import build_lmdb
    from data_prep.split_format import load_split
    c = stage.config
    build_lmdb(load_split(files["split"]), out, c["size"][0], c["size"][1], trial=c["trial"],
               subset=c["subset"], augment=c["augment"], seed=c["trial"], split_path=files["split"],
               verbose=run.get("progress", True))


def weights(stage, files, out, work, run):
    from common.config import WEIGHTS_ROOT
    from training.fetch_weights import fetch
    _publish(fetch(stage.config["name"], WEIGHTS_ROOT), work, out)


def geng16(stage, files, out, work, run):
    from experiments import stages
    c = stage.config
    model = stages.geng16(_context(stage, work, run), os.path.basename(work), files["train"],
                          files.get("weights"), c["iters"], c["two_step"], c["solver"], **c["net"])
    _publish(model, work, out)


def mtdnet(stage, files, out, work, run):
    from experiments import stages
    c = stage.config
    model = stages.mtdnet(_context(stage, work, run), os.path.basename(work), c["variant"],
                          files["train"], c["iters"], caffenet=files.get("caffenet"),
                          weights=files.get("weights"), aux_lmdb=files.get("aux"),
                          solver_kw=c["solver"], **c["net"])
    _publish(model, work, out)


def unsupervised(stage, files, out, work, run):
    from unsupervised import study
    c = stage.config
    setup = study.Setup(base=c["base"], iters=c["iters"], protocol=c["protocol"], size=c["size"],
                        lmdb_size=c["lmdb_size"], solver_kw=c["solver_kw"], k=c["k"],
                        ae_iters=c["ae_iters"], rounds=c["rounds"])
    paths, _ = study.run(_context(stage, work, run), files["large"], files["source"],
                         files["target"], setup, c["rows"], c["table"], c["setting"], c["title"])
    shutil.copytree(os.path.dirname(paths["results.md"]), out)


def features(stage, files, out, work, run):
    from experiments import stages
    c = stage.config
    os.makedirs(out, exist_ok=True)
    stages.extract(_context(stage, work, run), os.path.join(out, FEATURES), files["weights"],
                   files["split"], c["base"], c["subsets"], c["trial"], c["size"], c["resize"])


def scores(stage, files, out, work, run):
    from common.config import MTDNET_INPUT
    from evaluation import cir
    c = stage.config
    os.makedirs(out, exist_ok=True)
    result = cir.score_to_file(files["weights"], files["query"], files["gallery"],
                               os.path.join(out, SCORES), size=c["size"] or MTDNET_INPUT,
                               passes=c["passes"], trp=c["feature"] == "trp",
                               rnk=c["feature"] == "rnk", gpu=run.get("gpu"))
    for line in cir.summary(result):
        print(line)


def report(stage, files, out, work, run):
    from evaluation import evaluate
    c = stage.config
    if c.get("combine"):
        from experiments import demo
        return demo.summary_report(stage, files, out)
    sources = [files["source%d" % i] for i in range(len(stage.inputs))]
    if c["key"]:
        evaluate.report(out, c["protocol"], matrix=sources[0], key=c["key"],
                        similarity=c["similarity"], paper=c["paper"], title=c["title"])
    else:
        evaluate.report(out, c["protocol"], features=sources, paper=c["paper"], title=c["title"])


RUNNERS = {"split": split, "merge": merge, "single_shot": single_shot, "lmdb": lmdb,
           "weights": weights, "geng16": geng16, "mtdnet": mtdnet, "unsupervised": unsupervised,
           "features": features, "scores": scores, "report": report}


def lineage(stage):
    """(training work folders, split files) of everything a stage was made
    from: what its report draws and records."""
    from experiments.workflow import work_dir
    stages = stage.stages()
    trained = [work_dir(s) for s in stages if s.kind in ("geng16", "mtdnet", "unsupervised")]
    splits = [os.path.abspath(main_file(s.kind, s.path)) for s in stages
              if s.kind in ("split", "merge", "single_shot")]
    return trained, splits


def run(stage, inputs, out, work, run_settings, invocation=None):
    """Make `stage` into `out` from its inputs' folders {name: path}; the
    command that ran the workflow (`invocation`, provenance.step's record)
    is what its report records as having made it."""
    trained, splits = lineage(stage)
    record = dict(invocation or provenance.step("experiments.workflow", []),
                  run_dir=os.path.abspath("."), stages=trained, splits=splits,
                  gpu=run_settings.get("gpu"))
    with provenance.resumed(record):
        RUNNERS[stage.kind](stage, _files(stage, inputs), out, work, run_settings)
