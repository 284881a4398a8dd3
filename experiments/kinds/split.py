"""split: a dataset's canonical split (data_prep.make_split), parsed from
the dataset as distributed; the synthetic generator's split makes its
images inside the stage's folder."""
import os

import data_prep
from common.layout import SPLIT

MAIN = SPLIT
USES_CAFFE = False
MEM_MB = 2000


def code(config):
    # make_split loads the dataset's parser by name
    return ["data_prep." + config["dataset"]]


def run(stage, files, out, work, settings):
    c = stage.config
    os.makedirs(out, exist_ok=True)
    root = os.path.join(out, "images") if c["dataset"] == "synthetic" else files["root"]
    data_prep.make_split(c["dataset"], os.path.abspath(root), out=os.path.join(out, SPLIT),
                         **c["protocol"])
