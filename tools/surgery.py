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
"""
import argparse
import os

import numpy as np

from common import caffe_env
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
    except Exception as err:  # protobuf's DecodeError and friends
        raise ValueError("%s is not a readable .caffemodel (%s)" % (path, err)) from None
    layers = list(param.layer) or list(param.layers)
    return {l.name: list(l.blobs) for l in layers if l.blobs}


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
    unused = sorted(set(blobs) - set(net.params))
    return copied, initialised, unused


def load_weights(net, caffemodel):
    """Copy by name from `caffemodel` into `net` after checking every shape.
    Returns {"copied": [...], "initialised": [...], "unused": [...]}."""
    blobs = read_blobs(caffemodel)
    copied, initialised, unused = plan(net, blobs, caffemodel)
    copy_planned(net, blobs, copied)
    return {"copied": copied, "initialised": initialised, "unused": unused}


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


def open_net(net_path, phase=caffe.TRAIN):
    """A net from a prototxt, with a clear error when the file is missing."""
    if not os.path.exists(net_path):
        raise FileNotFoundError("net prototxt not found: %s" % net_path)
    return caffe.Net(net_path, phase)


def save_net(net, out):
    """Save the net's weights to `out`, whole or not at all."""
    with atomic_path(out) as tmp:
        net.save(tmp)


def build_init(net_path, weights, out, phase=caffe.TRAIN):
    """Instantiate `net_path`, load `weights` by name, save to `out`
    (atomically); returns the report."""
    net = open_net(net_path, phase)
    report = load_weights(net, weights)
    save_net(net, out)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description="load weights by layer name, with a report")
    ap.add_argument("--net", required=True, help="net prototxt (its data layer must be able to open)")
    ap.add_argument("--weights", required=True, help=".caffemodel to copy from (ImageNet or a previous stage)")
    ap.add_argument("--out", required=True, help="where to save the initialised .caffemodel")
    args = ap.parse_args(argv)
    caffe_env.set_mode(None)
    print(report_text(build_init(args.net, args.weights, args.out)))


if __name__ == "__main__":
    main()
