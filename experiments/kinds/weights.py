"""weights: a model zoo model (training/fetch_weights.py), checked against
its published checksum."""
from common.config import WEIGHTS_ROOT
from common.layout import FINAL
from experiments.kinds.job import publish
from training.fetch_weights import fetch
from experiments.plan import Stage

MAIN = FINAL
USES_CAFFE = False
MEM_MB = 2000


def plan(b, name, path=None):
    """A model zoo model (fetched by its stage), or the file given."""
    return b.external(path) if path else Stage("weights", name, {"name": name})


def run(stage, files, out, work, settings):
    publish(fetch(stage.config["name"], WEIGHTS_ROOT), work, out)
