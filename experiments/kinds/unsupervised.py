"""unsupervised: Geng16 §4.2's study on an unlabelled target, every model
of Tables 7 and 9 from the supervised source model (unsupervised/study.py),
its rounds of fine-tuning inside the stage's work folder."""
import os
import shutil

from common.code_fingerprint import python_layer_modules
from common.layout import RESULTS_MD
from experiments.kinds.job import context
from networks import geng16 as geng16_net
from networks import unsupervised as unsupervised_net
from unsupervised import study
from experiments.kinds.geng16 import batch_images
from experiments.plan import Stage
from networks.solver import scaled

MAIN = None
USES_CAFFE = True
MEM_MB = 12000


def _setup(config):
    return study.Setup(base=config["base"], iters=config["iters"], protocol=config["protocol"],
                       size=config["size"], lmdb_size=config["lmdb_size"],
                       solver_kw=config["solver_kw"], k=config["k"], ae_iters=config["ae_iters"],
                       rounds=config["rounds"])


def plan(b, label, large, source, target, setup, rows, table, setting, title):
    """Geng16 §4.2's study from the large-set model `large` (`setup`:
    study.setup_config's), the command's K where the setup sets none."""
    setup = dict(setup, scale=b.scale, seed=b.seed,
                 k=b.k if setup.get("k") is None else setup["k"])
    return Stage("unsupervised", label, dict(setup, rows=list(rows), table=table,
                                             setting=setting, title=title),
                 {"large": large, "source": source, "target": target})


def cost(config):
    """(iterations, images): the study's Geng16 fine-tunings, every round of
    self- and co-training and the gradient-reversal model (the autoencoder's
    iterations are on features, not images, and not counted)."""
    per_round = sum(scaled(i, config["scale"]) for i in config["iters"])
    rounds = sum(config["rounds"].get(row, 0) for row in config["rows"])
    rounds += 1 if "adversarial" in config["rows"] else 0
    iters = rounds * per_round
    return iters, iters * batch_images({"k": config["k"]} if config.get("k") else {})


def code(config):
    nets = [geng16_net.net_text(geng16_net.geng16(base=config["base"]), "geng16"),
            geng16_net.net_text(unsupervised_net.domain_adversarial(config["base"], 2),
                                "domain_adversarial")]
    return sorted({m for text in nets for m in python_layer_modules(text)})


def check(stage, files):
    study.check_setup(_setup(stage.config), files["source"], files["target"], stage.path)


def run(stage, files, out, work, settings):
    c = stage.config
    paths, _ = study.run(context(stage, work, settings, inside=True), files["large"], files["source"],
                         files["target"], _setup(c), c["rows"], c["table"], c["setting"],
                         c["title"])
    shutil.copytree(os.path.dirname(paths[RESULTS_MD]), out)
