"""geng16: one Geng16 transfer stage (§4.1), two-stepped or one-stepped,
from the previous stage's weights or the fillers (training/two_step.py)."""
import os

from common.code_fingerprint import python_layer_modules
from common.layout import FINAL
from data_prep.lmdb_builder import read_index
from steps import stages
from experiments.kinds.job import context, publish
from networks import geng16 as geng16_net
from experiments.plan import Stage, full_arguments
from networks.solver import scaled

MAIN = FINAL
USES_CAFFE = True
MEM_MB = 12000


def _net_kw(config):
    return {k: v for k, v in config["net"].items() if k != "step1_pv"}


def plan(b, label, train, weights=None, schedule="large", two_step=True, solver_kw=None,
         **net_kw):
    """One Geng16 stage on the LMDB stage `train` from `weights` (a stage, a
    file, or None: the fillers); `schedule`: a key of SCHEDULES or (step 1,
    step 2) iterations; `net_kw`: the net generator's arguments, the others
    spelled out at their defaults."""
    if b.k:   # the command's --k, where the recipe sets none
        net_kw.setdefault("k", b.k)
    step1_pv = net_kw.pop("step1_pv", False)  # training/two_step's, not the net generator's
    net_kw = dict(full_arguments(geng16_net.geng16, net_kw), step1_pv=step1_pv)
    iters = geng16_net.SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    if net_kw.get("step1_pv") and not two_step:
        raise ValueError("step1_pv: one-stepped fine-tuning has no step 1")
    if two_step and weights is None:
        raise ValueError("two-stepped fine-tuning needs the previous stage's weights "
                         "(step 1 trains the classifier on fixed features)")
    inputs = {"train": train}
    if weights is not None:
        inputs["weights"] = weights
    return Stage("geng16", label, {"net": net_kw, "iters": iters, "two_step": two_step,
                                   "scale": b.scale, "seed": b.seed,
                                   "solver": solver_kw or {}}, inputs)


def cost(config):
    """(iterations, images) of the stage's steps at its scale."""
    steps = config["iters"] if config["two_step"] else config["iters"][1:]
    iters = sum(scaled(i, config["scale"]) for i in steps)
    return iters, iters * batch_images(config["net"])


def batch_images(net):
    return net.get("k", geng16_net.K) * net.get("m", geng16_net.M)


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
