"""split: a dataset's canonical split (data_prep.make_split), parsed from
the dataset as distributed; the synthetic generator's split makes its
images inside the stage's folder."""
import os

import data_prep
from common.layout import SPLIT
from experiments.plan import Stage

MAIN = SPLIT
USES_CAFFE = False
MEM_MB = 2000


def plan(b, dataset, root=None, name=None, **protocol):
    """The split of `dataset` (data_prep's parser, `protocol` its options);
    the synthetic generator's split has no input folder: the stage makes
    its images."""
    inputs = {} if dataset == "synthetic" else {
        "root": b.external(root or os.path.join(b.data_root, dataset))}
    return Stage("split", name or dataset, {"dataset": dataset, "protocol": protocol}, inputs)


def code(config):
    # make_split loads the dataset's parser by name
    return ["data_prep." + config["dataset"]]


def run(stage, files, out, work, settings):
    c = stage.config
    os.makedirs(out, exist_ok=True)
    root = os.path.join(out, "images") if c["dataset"] == "synthetic" else files["root"]
    data_prep.make_split(c["dataset"], os.path.abspath(root), out=os.path.join(out, SPLIT),
                         **c["protocol"])
