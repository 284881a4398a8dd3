"""Initial weights of the MTDnet family (Chen et al. 2017, §Setup: "a
pre-trained AlexNet model … to initialize the kernel weights of the first
two convolutional layers"; §Cross-domain: "both the target domain network
and the source domain network are initialized using the model trained on
CUHK03"):

    python -m tools.mtdnet_init --net prototxt/mtdnet/mtdnet_train.prototxt \
        --caffenet weights/bvlc_reference_caffenet.caffemodel --out init.caffemodel
    python -m tools.mtdnet_init --net prototxt/mtdnet/mtdnet_cross_train.prototxt \
        --weights runs/cuhk03/final.caffemodel --out cross_init.caffemodel

conv1–conv2 come from bvlc_reference_caffenet by layer name (the other
layers keep their Gaussian fillers) — except into the authors' reading of
MTDnet-rnk (networks/mtdnet.py rnk_net "authors", told by its wiring),
which their script initialises from the whole CaffeNet model: every layer
the names match but fc8, CaffeNet's 1000-way classifier where the rnk net
has its 512-D feature (stock Caffe's --weights would abort on that shape,
so it keeps its filler). A whole trained model loads by name,
shapes checked first, and must fill every layer but the `cros_*` source
stream, which is then set to a copy of the target stream.
"""
import numpy as np

import caffe
from networks import mtdnet as netgen
from training.surgery import copy_planned, load_blobs, open_net, plan, read_blobs, save_net

CAFFENET_LAYERS = netgen.CAFFENET_INIT["ours"]  # conv1, conv2: what the paper initialises from ImageNet
CAFFENET_CLASSIFIER = "fc8"           # CaffeNet's 1000-way layer, never copied whole
SOURCE_PREFIX = "cros_"               # the authors' names for the source stream


def init_from_caffenet(net, caffemodel, layers=CAFFENET_LAYERS):
    """Copy `layers` (conv1, conv2; None: every layer of `net` the model
    names but CAFFENET_CLASSIFIER) from a CaffeNet .caffemodel into `net` by
    name, checking shapes first (Caffe would abort). Streams that share these
    parameters by name see the copy too. Returns the copied layer names."""
    blobs = read_blobs(caffemodel)
    if layers is None:
        layers = [name for name in net.params if name in blobs and name != CAFFENET_CLASSIFIER]
    for name in layers:
        if name not in blobs:
            raise ValueError("%s has no layer '%s'" % (caffemodel, name))
        if name not in net.params:
            raise ValueError("the net has no layer '%s' to initialise" % name)
    wanted = {name: blobs[name] for name in layers}
    plan(net, wanted, caffemodel)
    copy_planned(net, wanted, list(layers))
    return list(layers)


def copy_target_to_source(net, prefix=SOURCE_PREFIX):
    """Set every `cros_X` layer's parameters to a copy of layer X's (the
    cross net's source stream starts as the target stream). Returns the
    names copied."""
    copied = []
    for name in net.params:
        if not name.startswith(prefix):
            continue
        target = name[len(prefix):]
        if target not in net.params:
            raise ValueError("source layer '%s' has no target layer '%s'" % (name, target))
        for dst, src in zip(net.params[name], net.params[target]):
            if dst.data.shape != src.data.shape:
                raise ValueError("layer '%s' blob shape %s differs from '%s' %s"
                                 % (name, dst.data.shape, target, src.data.shape))
            dst.data[...] = np.array(src.data)
        copied.append(name)
    return copied


def build_init(net_path, out, caffenet=None, weights=None, phase=caffe.TRAIN, seed=None):
    """Instantiate `net_path` (its fillers seeded by `seed`, surgery.open_net),
    load `weights` (a trained model, by name) and/or CaffeNet conv1–conv2,
    copy the cross net's target stream into its source stream, and save the
    result to `out` (atomically)."""
    blobs = read_blobs(weights) if weights else None  # junk refused before the net is built
    if caffenet:
        read_blobs(caffenet)
    net = open_net(net_path, phase, seed)
    if weights:
        load_blobs(net, blobs, weights, lambda name: not name.startswith(SOURCE_PREFIX))
    if caffenet:
        init_from_caffenet(net, caffenet, netgen.CAFFENET_INIT[netgen.rnk_net_of(net.bottom_names)])
    copy_target_to_source(net)
    save_net(net, out)
    return out

