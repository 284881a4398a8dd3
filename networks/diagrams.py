"""Diagrams of the generated nets, drawn by Caffe's own `caffe.draw`
(pydot + Debian's graphviz), for the README's sections for learners and the
report pages (evaluation/report.py):

    python -m tools.draw_nets [--out docs/diagrams] [FAMILY ...]    (make diagrams)

Every net definition under prototxt/<family>/ (solvers are skipped) becomes
docs/diagrams/<family>/<name>.png; a family listed in SELECTED draws only
the nets named there (Geng16's variants differ from its main net in their
heads only, and a GoogLeNet diagram is several megabytes).
"""
import glob
import os
import shutil

from google.protobuf import text_format

from common import caffe_env  # noqa: F401  (glog settings before caffe)
from common.atomic import atomic_path
from common.config import ROOT
import caffe.draw
from caffe.proto import caffe_pb2

PROTOTXT = os.path.join(ROOT, "prototxt")
SELECTED = {"geng16": ("geng16_train", "geng16_deploy", "dgdnet_train"),
            "unsupervised": ("autoencoder_train",)}
OUT = os.path.join(ROOT, "docs", "diagrams")


def net_files(families=None):
    """(family, path) of every net definition (not solver) under prototxt/."""
    known = sorted(d for d in os.listdir(PROTOTXT) if os.path.isdir(os.path.join(PROTOTXT, d)))
    unknown = sorted(set(families or ()) - set(known))
    if unknown:  # drawing nothing would look like success
        raise ValueError("no net family %s under %s; known: %s"
                         % (", ".join(unknown), PROTOTXT, ", ".join(known)))
    found = []
    for path in sorted(glob.glob(os.path.join(PROTOTXT, "*", "*.prototxt"))):
        family = os.path.basename(os.path.dirname(path))
        if families and family not in families:
            continue
        name = os.path.basename(path)[:-len(".prototxt")]
        if "solver" in name or (family in SELECTED and name not in SELECTED[family]):
            continue
        found.append((family, path))
    return found


def draw(path, out_png, rankdir="LR"):
    """Render one prototxt to PNG with caffe.draw, atomically."""
    if shutil.which("dot") is None:
        raise RuntimeError("graphviz's dot is not installed (apt-get install graphviz; make setup does)")
    net = caffe_pb2.NetParameter()
    with open(path) as f:
        text_format.Merge(f.read(), net)
    with atomic_path(out_png) as tmp:
        with open(tmp, "wb") as f:
            f.write(caffe.draw.draw_net(net, rankdir, ext="png"))

