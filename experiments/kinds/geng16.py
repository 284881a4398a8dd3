"""geng16: one Geng16 transfer stage (§4.1), two-stepped or one-stepped,
from the previous stage's weights or the fillers (training/two_step.py)."""
import os

from common.code_fingerprint import python_layer_modules
from common.layout import FINAL
from data_prep.lmdb_builder import read_index
from steps import stages
from experiments.kinds.job import context, publish
from networks import geng16 as geng16_net

MAIN = FINAL
USES_CAFFE = True
MEM_MB = 12000


def _net_kw(config):
    return {k: v for k, v in config["net"].items() if k != "step1_pv"}


def code(config):
    text = geng16_net.net_text(geng16_net.geng16(**_net_kw(config)), "geng16")
    return python_layer_modules(text)


def check(stage, files):
    """The batch's K identities and the net's input must fit the training
    LMDB: refused here, before any training."""
    net = stage.config["net"]
    index = read_index(files["train"])
    ids = len(set(index["label"]))
    if net["k"] > ids:
        raise ValueError("k=%d identities per batch, but the training LMDB %s holds %d "
                         "identities (stage %s)" % (net["k"], files["train"], ids, stage.path))
    h, w = geng16_net.input_shape(net["base"], net["size"])
    if h > index["height"] or w > index["width"]:
        raise ValueError("the net's %d x %d input is larger than the %d x %d images of the "
                         "training LMDB %s (stage %s)" % (h, w, index["height"], index["width"],
                                                          files["train"], stage.path))


def run(stage, files, out, work, settings):
    c = stage.config
    model = stages.geng16(context(stage, work, settings), os.path.basename(work), files["train"],
                          files.get("weights"), c["iters"], c["two_step"], c["solver"], **c["net"])
    publish(model, work, out)
