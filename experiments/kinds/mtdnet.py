"""mtdnet: one MTDnet training stage (its variants, the cross-domain net),
from CaffeNet's conv1-2 and/or a previous stage by layer name."""
import os

from common.code_fingerprint import python_layer_modules
from common.layout import FINAL
from steps import stages
from experiments.kinds.job import context, publish
from networks import mtdnet as mtdnet_net

MAIN = FINAL
USES_CAFFE = True
MEM_MB = 12000


def code(config):
    spec = mtdnet_net.TRAIN_NETS[config["variant"]](**config["net"])
    return python_layer_modules(mtdnet_net.net_text(spec, config["variant"]))


def run(stage, files, out, work, settings):
    c = stage.config
    model = stages.mtdnet(context(stage, work, settings), os.path.basename(work), c["variant"],
                          files["train"], c["iters"], caffenet=files.get("caffenet"),
                          weights=files.get("weights"), aux_lmdb=files.get("aux"),
                          solver_kw=c["solver"], **c["net"])
    publish(model, work, out)
