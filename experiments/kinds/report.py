"""report: the evaluation of features (one file per trial: mean ± std) or
of one score matrix beside the paper's row (evaluation/evaluate.py), or the
demo's summary of its evaluations over seeds (experiments/demo.py)."""
from evaluation import evaluate
from experiments import demo
from experiments.plan import Stage

MAIN = None
USES_CAFFE = False
MEM_MB = 2000


def plan(b, label, sources, protocol, title, paper=None, matrix_key=None, similarity=False):
    """An evaluation report of features (one per trial: mean ± std) or of
    one score matrix, beside the paper's row `paper`."""
    return Stage("report", label, {"protocol": protocol, "title": title, "paper": paper,
                                   "key": matrix_key, "similarity": similarity},
                 {"source%d" % i: s for i, s in enumerate(sources)})


def run(stage, files, out, work, settings):
    c = stage.config
    if c.get("combine"):
        return demo.summary_report(stage, files, out)
    sources = [files["source%d" % i] for i in range(len(stage.inputs))]
    if c["key"]:
        evaluate.report(out, c["protocol"], matrix=sources[0], key=c["key"],
                        similarity=c["similarity"], paper=c["paper"], title=c["title"])
    else:
        evaluate.report(out, c["protocol"], features=sources, paper=c["paper"], title=c["title"])
