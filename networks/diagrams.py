"""Diagrams of the generated nets, drawn by Caffe's own `caffe.draw`
(pydot + Debian's graphviz), for docs/teaching.md and the report pages
(evaluation/report.py):

    python -m tools.draw_nets [--out docs/diagrams] [FAMILY ...]    (make diagrams)

Every net definition under prototxt/<family>/ (solvers are skipped) becomes
docs/diagrams/<family>/<name>.png; a family listed in SELECTED draws only
the nets named there (Geng16's variants differ from its main net in their
heads only, and a GoogLeNet diagram is several megabytes).
"""
import glob
import hashlib
import os
import shutil

from google.protobuf import text_format

from common import caffe_env  # noqa: F401  (glog settings before caffe)
from common.atomic import atomic_path
from common.config import ROOT
import caffe.draw
from caffe.proto import caffe_pb2

DECIDES_RESULTS = False   # pictures of nets (common/code_fingerprint.py)

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


def graph(path, rankdir="LR"):
    """caffe.draw's graph of one prototxt and its SHA-1 (of the graph's DOT
    text: what the picture shows, so the same net with other data sources
    or seeds has the same one)."""
    net = caffe_pb2.NetParameter()
    with open(path) as f:
        text_format.Merge(f.read(), net)
    net.ClearField("name")   # only the graph's id, never drawn; a stage names its net after itself
    dot = caffe.draw.get_pydot_graph(net, rankdir)
    return dot, hashlib.sha1(dot.to_string().encode()).hexdigest()


def render(dot, key, out_png, cache=None):
    """Write `graph`'s picture to PNG (graphviz), atomically. `cache`: a
    folder keeping each picture by its key, so that a net drawn before is
    copied, not laid out again (graphviz takes seconds per net)."""
    kept = os.path.join(cache, key + ".png") if cache else None
    if kept and os.path.isfile(kept):
        with atomic_path(out_png) as tmp:
            shutil.copyfile(kept, tmp)
        return
    if shutil.which("dot") is None:
        raise RuntimeError("graphviz's dot is not installed (apt-get install graphviz; make setup does)")
    png = dot.create(format="png")
    if kept:
        os.makedirs(cache, exist_ok=True)
    for target in filter(None, (out_png, kept)):
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(png)


def draw(path, out_png, rankdir="LR", cache=None):
    """Render one prototxt to PNG with caffe.draw, atomically."""
    render(*graph(path, rankdir), out_png, cache)

