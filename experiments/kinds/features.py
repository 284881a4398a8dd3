"""features: the base's output features (Geng16 §4.1) of a split's
subsets under a trained model, images resized and centre-cropped as the
training data layer crops (evaluation/features.py)."""
import os

from common.layout import FEATURES
from steps import stages
from experiments.kinds.job import context

MAIN = FEATURES
USES_CAFFE = True
MEM_MB = 6000


def run(stage, files, out, work, settings):
    c = stage.config
    os.makedirs(out, exist_ok=True)
    stages.extract(context(stage, work, settings), os.path.join(out, FEATURES), files["weights"],
                   files["split"], c["base"], c["subsets"], c["trial"], c["size"], c["resize"])
