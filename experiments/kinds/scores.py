"""scores: MTDnet's CIR pair scores of a query set against a gallery, and
the distances of a ranking feature in the same run (evaluation/cir.py)."""
import os

from common.config import MTDNET_INPUT
from common.layout import SCORES
from evaluation import cir
from experiments.plan import Stage

MAIN = SCORES
USES_CAFFE = True
MEM_MB = 6000


def plan(b, model, query, gallery, passes, feature, size):
    """`model`'s CIR scores of the LMDB stage `query` against `gallery`
    (`passes`: of both orders and flips), and the distances of the ranking
    feature `feature` (trp, rnk or None) in the same run."""
    return Stage("scores", "%s_%s" % (model.label, query.label),
                 {"passes": passes, "feature": feature, "size": size},
                 {"weights": model, "query": query, "gallery": gallery})


def run(stage, files, out, work, settings):
    c = stage.config
    os.makedirs(out, exist_ok=True)
    result = cir.score_to_file(files["weights"], files["query"], files["gallery"],
                               os.path.join(out, SCORES), size=c["size"] or MTDNET_INPUT,
                               passes=c["passes"], trp=c["feature"] == "trp",
                               rnk=c["feature"] == "rnk", gpu=settings.get("gpu"))
    for line in cir.summary(result):
        print(line)
