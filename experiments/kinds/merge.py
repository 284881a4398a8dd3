"""merge: several splits as one, identities offset so that none collide
(Geng16 §5.3: CUHK03 + Market for the small sets; MTDnet-aug)."""
import os

import data_prep
from common.layout import SPLIT
from experiments.plan import Stage

MAIN = SPLIT
USES_CAFFE = False
MEM_MB = 2000


def plan(b, name, splits, eval_from=None):
    """Several splits as one (`eval_from`: the split whose tests are kept)."""
    return Stage("merge", name, {"eval_from": eval_from},
                 {"split%d" % i: s for i, s in enumerate(splits)})


def run(stage, files, out, work, settings):
    os.makedirs(out, exist_ok=True)
    data_prep.merge_splits([files["split%d" % i] for i in range(len(files))],
                           out=os.path.join(out, SPLIT), eval_from=stage.config["eval_from"])
