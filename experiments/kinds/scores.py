"""scores: MTDnet's CIR pair scores of a query set against a gallery, and
the distances of a ranking feature in the same run (evaluation/cir.py)."""
import os

from common.config import MTDNET_INPUT
from common.layout import SCORES
from evaluation import cir

MAIN = SCORES
USES_CAFFE = True
MEM_MB = 6000


def run(stage, files, out, work, settings):
    c = stage.config
    os.makedirs(out, exist_ok=True)
    result = cir.score_to_file(files["weights"], files["query"], files["gallery"],
                               os.path.join(out, SCORES), size=c["size"] or MTDNET_INPUT,
                               passes=c["passes"], trp=c["feature"] == "trp",
                               rnk=c["feature"] == "rnk", gpu=settings.get("gpu"))
    for line in cir.summary(result):
        print(line)
