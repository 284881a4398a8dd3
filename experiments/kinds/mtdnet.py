"""mtdnet: one MTDnet training stage (its variants, the cross-domain net),
from CaffeNet's conv1-2 and/or a previous stage by layer name."""
import os

from common.code_fingerprint import python_layer_modules
from common.layout import FINAL
from steps import stages
from experiments.kinds.job import context, publish
from networks import mtdnet as mtdnet_net
from experiments.plan import Stage, full_arguments
from networks.solver import scaled

MAIN = FINAL
USES_CAFFE = True
MEM_MB = 12000


def plan(b, label, variant, train, iters, caffenet=None, weights=None, aux=None,
         solver_kw=None, **net_kw):
    """One MTDnet stage of `variant` (a key of TRAIN_NETS) on the LMDB stage
    `train`, from CaffeNet and/or a previous stage; `aux`: the cross net's
    source LMDB."""
    net_kw = full_arguments(mtdnet_net.TRAIN_NETS[variant], net_kw)
    inputs = {"train": train}
    for name, value in (("caffenet", caffenet), ("weights", weights), ("aux", aux)):
        if value is not None:
            inputs[name] = value
    return Stage("mtdnet", label, {"variant": variant, "net": net_kw, "iters": iters,
                                   "scale": b.scale, "seed": b.seed,
                                   "solver": solver_kw or {}}, inputs)


def cost(config):
    """(iterations, images): a batch of triplets; the cross net reads a
    second batch from the source set."""
    iters = scaled(config["iters"], config["scale"])
    return iters, iters * 3 * config["net"].get("batch", mtdnet_net.BATCH) * (
        2 if config["variant"] == "mtdnet_cross" else 1)


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
