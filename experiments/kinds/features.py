"""features: the base's output features (Geng16 §4.1) of a split's
subsets under a trained model, images resized and centre-cropped as the
training data layer crops (evaluation/features.py)."""
import os

from common.layout import FEATURES
from steps import stages
from experiments.kinds.job import context
from experiments.plan import Stage
from networks.geng16 import LMDB_SIZE as GENG16_LMDB

MAIN = FEATURES
USES_CAFFE = True
MEM_MB = 6000


def plan(b, model, split, base, subsets, trial=0, size=None, resize=None):
    """The base's output features (Geng16 §4.1) of a split's subsets.
    `size`: the input the model was trained at (default: the base's);
    images are resized to `resize` (default: the training LMDB's) and
    centre-cropped, as the data layer crops."""
    if size is None:
        resize = resize or GENG16_LMDB[base]
    return Stage("features", "%s_t%d" % (model.label, trial),
                 {"base": base, "subsets": subsets, "trial": trial, "size": size,
                  "resize": resize}, {"weights": model, "split": split})


def run(stage, files, out, work, settings):
    c = stage.config
    os.makedirs(out, exist_ok=True)
    stages.extract(context(stage, work, settings), os.path.join(out, FEATURES), files["weights"],
                   files["split"], c["base"], c["subsets"], c["trial"], c["size"], c["resize"])
