"""Weight loading by layer name with a report, for Geng16's transfer steps
(§4.1: ImageNet → large Re-ID set → small set; the N-way softmax layer "has
to be replaced with a randomly initialised one"):

    python -m tools.surgery --net prototxt/geng16/geng16_step1_train.prototxt \
        --weights weights/bvlc_googlenet.caffemodel --out runs/init.caffemodel

Every layer of the net whose name is in the .caffemodel is copied, after
checking all blob shapes first: a mismatch stops with one message naming the
layer and both shapes (Caffe's own copy_from would abort the process). Layers
absent from the .caffemodel keep their fillers ("initialised") — the renamed
`cls_<head>_<N>` classifiers of a new identity set among them.

Every load states how much of the net the file must fill (`require`): at
least one layer (tools.surgery, tools.train --weights), all of them (a model
to test) or all but the heads a transfer replaces (training/two_step.py). A
file that does not parse as a model, holds no weights, or fills less than
that is refused, naming the file and the first layer that does not fit:
protobuf reads many junk byte strings (a text file, an HTML page, an empty
file) as an empty model, and Caffe would then train from the fillers.
"""
import os

import numpy as np

from common.atomic import atomic_path
import caffe
from caffe.proto import caffe_pb2


def _blob_shape(blob):
    """Shape of a BlobProto: its `shape` field, or the legacy 4-D
    num/channels/height/width of models saved before Caffe had N-D blobs."""
    if blob.HasField("shape"):
        return tuple(blob.shape.dim)
    return (blob.num, blob.channels, blob.height, blob.width)


def read_blobs(path):
    """{layer name: [BlobProto]} of a .caffemodel (new or V1 layer format)."""
    param = caffe_pb2.NetParameter()
    try:
        with open(path, "rb") as f:
            param.ParseFromString(f.read())
    except FileNotFoundError:
        raise FileNotFoundError("caffemodel not found: %s" % path) from None
    except IsADirectoryError:
        raise IsADirectoryError("%s is a folder, not a .caffemodel" % path) from None
    except Exception as err:  # protobuf's DecodeError and friends
        raise ValueError("%s is not a readable .caffemodel (%s)" % (path, err)) from None
    layers = list(param.layer) or list(param.layers)
    blobs = {l.name: list(l.blobs) for l in layers if l.blobs}
    if not blobs:
        raise ValueError("%s is not a .caffemodel: it holds no layer with weights" % path)
    return blobs


def _shapes_match(ours, blob):
    """Caffe's rule: equal shapes, or a legacy 4-D blob equal to ours padded
    with leading 1s."""
    theirs = _blob_shape(blob)
    if blob.HasField("shape"):
        return theirs == ours
    return len(ours) <= 4 and theirs == (1,) * (4 - len(ours)) + tuple(ours)


def plan(net, blobs, source="the weights"):
    """Check every by-name match and return (copied, initialised, unused)
    layer names; raise ValueError on the first blob count or shape mismatch."""
    copied, initialised = [], []
    for name, params in net.params.items():
        if name not in blobs:
            initialised.append(name)
            continue
        theirs = blobs[name]
        if len(theirs) != len(params):
            raise ValueError("layer '%s': %s hold %d blobs, the net %d"
                             % (name, source, len(theirs), len(params)))
        for k, (dst, src) in enumerate(zip(params, theirs)):
            if not _shapes_match(dst.data.shape, src):
                raise ValueError("layer '%s' blob %d: %s have shape %s, the net %s"
                                 % (name, k, source, _blob_shape(src), dst.data.shape))
        copied.append(name)
    # A layer whose parameters are all shared with a copied one (Caffe's
    # `param { name: … }`, the streams of a pair net) receives the copy too.
    filled = {_address(b) for name in copied for b in net.params[name]}
    initialised = [name for name in initialised
                   if not all(_address(b) in filled for b in net.params[name])]
    unused = sorted(set(blobs) - set(net.params))
    return copied, initialised, unused


def _address(blob):
    """Where a Blob's data lives: shared parameters have one place."""
    return blob.data.__array_interface__["data"][0]


def check_required(copied, initialised, blobs, source, require="one"):
    """Raise ValueError unless the planned copy fills what `require` asks:
    "one" (at least one layer), "all" (every parametrised layer), or a
    function of a layer name that says whether that layer must be copied
    (and at least one is)."""
    if require != "one":
        needed = (lambda name: True) if require == "all" else require
        missing = [name for name in initialised if needed(name)]
        if missing:
            raise ValueError("layer '%s' of the net has no weights in %s (%d such layer(s))"
                             % (missing[0], source, len(missing)))
    if not copied:
        theirs = sorted(blobs)
        raise ValueError("%s fits no layer of the net: it holds %d layer(s) with weights (%s%s), "
                         "none of them named as a layer of the net"
                         % (source, len(theirs), ", ".join(theirs[:5]),
                            ", ..." if len(theirs) > 5 else ""))


def load_blobs(net, blobs, source, require="one"):
    """Copy the already read `blobs` into `net` by name once every shape
    and `require` (see check_required) are checked; returns the report
    {"copied": [...], "initialised": [...], "unused": [...]}."""
    copied, initialised, unused = plan(net, blobs, source)
    check_required(copied, initialised, blobs, source, require)
    copy_planned(net, blobs, copied)
    return {"copied": copied, "initialised": initialised, "unused": unused}


def load_weights(net, caffemodel, require="one"):
    """Copy by name from `caffemodel` into `net` after checking every shape
    and that the file fills what `require` asks (check_required)."""
    return load_blobs(net, read_blobs(caffemodel), caffemodel, require)


def copy_planned(net, blobs, names):
    """Copy the BlobProtos of `names` (already checked by plan) into the net."""
    for name in names:
        for dst, src in zip(net.params[name], blobs[name]):
            dst.data[...] = np.asarray(src.data, np.float32).reshape(dst.data.shape)


def report_text(report):
    lines = ["copied %d layer(s): %s" % (len(report["copied"]), ", ".join(report["copied"])),
             "initialised %d layer(s) from their fillers: %s"
             % (len(report["initialised"]), ", ".join(report["initialised"]))]
    if report["unused"]:
        lines.append("not in the net, ignored: %s" % ", ".join(report["unused"]))
    return "\n".join(lines)


def open_net(net_path, phase=caffe.TRAIN, seed=None):
    """A net from a prototxt, with a clear error when the file is missing.
    `seed`: Caffe's random seed for the fillers of the layers the weights
    will not cover (the new classifier of a fine-tuning); None leaves
    Caffe's own, which differs from run to run."""
    if not os.path.exists(net_path):
        raise FileNotFoundError("net prototxt not found: %s" % net_path)
    if seed is not None:
        caffe.set_random_seed(seed)
    return caffe.Net(net_path, phase)


def save_net(net, out):
    """Save the net's weights to `out`, whole or not at all."""
    with atomic_path(out) as tmp:
        net.save(tmp)


def build_init(net_path, weights, out, phase=caffe.TRAIN, require="one"):
    """Instantiate `net_path`, load `weights` by name (`require`: see
    check_required), save to `out` (atomically); returns the report."""
    blobs = read_blobs(weights)  # a file that is no model is refused before the net is built
    net = open_net(net_path, phase)
    report = load_blobs(net, blobs, weights, require)
    save_net(net, out)
    return report

