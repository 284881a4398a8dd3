"""NetSpec generator of the MTDnet family (Chen et al. 2017, Fig. 2 and
Table 1) and of their solvers:

    python -m tools.netgen mtdnet [--out prototxt/mtdnet] [--size 227]
                                  [--source LMDB] [--aux-source LMDB] [--batch 128]

Networks (train nets take their data from layers/triplet_data.py, or from
Input layers with data="input"):
- MTDnet: one conv1–conv2 trunk over a batch of triplets (A1, A2, B2)
  (CaffeNet order conv → ReLU → pool → LRN) → `feat` 512 → L2 → triplet loss;
  the trunk's norm2 maps regrouped into a positive and a negative pair,
  concatenated on channels (512) → conv3 … fc8 → softmax loss; weights 1 : 1.
- MTDnet-rnk: ranking only, widened to 5 conv + 3 FC (the authors' rnk net:
  the last FC, `fc8`, is the 512-D feature). `rnk_net` picks its reading:
  "ours" (default: the paper's — MTDnet's CaffeNet-order trunk and fillers,
  CaffeNet's conv1–conv2 as every MTDnet net) or "authors" (their
  MTDnet-rnk/train_val.prototxt: AlexNet order conv → ReLU → LRN → pool,
  bias fillers 0.1 on conv2, conv4, conv5, fc6, fc7, and the whole CaffeNet
  model as init, training/mtdnet_init.py).
- MTDnet-cls: classification only (the pairs of the same triplets).
- MTDnet-cross: MTDnet on the target set plus a source-domain stream (its own
  `cros_*` parameters) over source pairs; Caffe's ContrastiveLoss (margin 1)
  between the L2-normalised fc7 (before ReLU, as the authors' code) of each
  target pair and a source pair, label = XNOR of their labels.
- Deploy: a pair net (two images, two weight-sharing streams → same-person
  probability `prob`), the trunk + 512-D ranking feature (`normfeat`,
  MTDnet-trp; also gives `norm2` for CIR), the classification head alone
  (pair maps → `prob`, used by evaluation/cir.py), and the rnk feature.

Layer names follow bvlc_reference_caffenet (conv1, conv2) and the authors'
prototxt (conv1–conv5, feat, fc6–fc8, cros_*), so a CaffeNet .caffemodel
initialises conv1–conv2 by name and the authors' trained models load into
these nets. Parameter names (conv1_w, …) make every stream share one blob.
"""
import json
import math
import os


from networks import write_files
from common.config import MTDNET_INPUT, ROOT
import caffe
from caffe import layers as L, params as P
from networks import solver as schedules

BATCH = 128             # triplets per batch, authors' data_param batch_size
# The authors' code stretches each whole 64 × 128 crop to the input: the
# LMDB keeps that size and the data layer does the stretching.
LMDB_SIZE = (128, 64)
FEAT_DIM = 512          # ranking feature f ∈ R^512 (Eq. 1)
FC_DIM = 4096           # fc6, fc7 (AlexNet)
DROPOUT = 0.5
CONTRASTIVE_MARGIN = 1.0  # contrastive_loss_param { margin: 1 } (Eq. 4, m)
SOURCE_LR_MULT = 0      # the authors' cross net keeps the source stream fixed (lr_mult 0)
LOSS_WEIGHTS = {"triplet": 1.0, "softmax": 1.0, "contrastive": 1.0}

DEFAULT_SOURCE = "data/mtdnet/train.lmdb"          # relative to where training runs
DEFAULT_AUX_SOURCE = "data/mtdnet/source_train.lmdb"
OUT_DIR = os.path.join(ROOT, "prototxt", "mtdnet")

LRN = dict(local_size=5, alpha=1e-4, beta=0.75)
RNK_NETS = ("ours", "authors")
AUTHORS_RNK_BIAS = 0.1  # the authors' rnk bias filler of conv2, conv4, conv5, fc6, fc7 (fc8 as ours)
# CaffeNet layers each rnk reading initialises (None: every layer the names match).
CAFFENET_INIT = {"ours": ("conv1", "conv2"), "authors": None}


def norm2_size(size):
    """Spatial side of norm2 for a size × size input (13 for 227)."""
    side = (size - 11) // 4 + 1                       # conv1 11×11 stride 4
    side = int(math.ceil((side - 3) / 2.0)) + 1       # pool1 3×3 stride 2 (Caffe rounds up)
    return int(math.ceil((side - 3) / 2.0)) + 1       # conv2 keeps it (pad 2); pool2


def _params(pname, lr_mult=1):
    """Weight and bias params (lr 1/2, decay 1/0 as in the authors' nets),
    named when `pname` is given so that layers sharing it share blobs."""
    w = dict(lr_mult=lr_mult, decay_mult=lr_mult and 1)
    b = dict(lr_mult=2 * lr_mult, decay_mult=0)
    if pname:
        w["name"], b["name"] = pname + "_w", pname + "_b"
    return [w, b]


def _conv(bottom, nout, ks, pname=None, lr_mult=1, bias=0.0, **kw):
    return L.Convolution(bottom, num_output=nout, kernel_size=ks, param=_params(pname, lr_mult),
                         weight_filler=dict(type="gaussian", std=0.01),
                         bias_filler=dict(type="constant", value=bias), **kw)


def _fc(bottom, nout, pname=None, lr_mult=1, std=0.005, bias=0.0, **kw):
    return L.InnerProduct(bottom, num_output=nout, param=_params(pname, lr_mult),
                          weight_filler=dict(type="gaussian", std=std),
                          bias_filler=dict(type="constant", value=bias), **kw)


def trunk(n, data, suffix="", prefix="", lr_mult=1):
    """conv1 → relu1 → pool1 → norm1 → conv2 → relu2 → pool2 → norm2 (CaffeNet
    order); layer names prefix+name+suffix, parameter names prefix+conv1_w …
    (one blob for every stream with the same prefix). Returns norm2."""
    def k(name):
        return prefix + name + suffix
    n[k("conv1")] = _conv(data, 96, 11, prefix + "conv1", lr_mult, stride=4)
    n[k("relu1")] = L.ReLU(n[k("conv1")], in_place=True)
    n[k("pool1")] = L.Pooling(n[k("conv1")], pool=P.Pooling.MAX, kernel_size=3, stride=2)
    n[k("norm1")] = L.LRN(n[k("pool1")], **LRN)
    n[k("conv2")] = _conv(n[k("norm1")], 256, 5, prefix + "conv2", lr_mult, pad=2, group=2)
    n[k("relu2")] = L.ReLU(n[k("conv2")], in_place=True)
    n[k("pool2")] = L.Pooling(n[k("conv2")], pool=P.Pooling.MAX, kernel_size=3, stride=2)
    n[k("norm2")] = L.LRN(n[k("pool2")], **LRN)
    return n[k("norm2")]


def alexnet_trunk(n, data):
    """The authors' rnk trunk: conv1 → relu1 → norm1 → pool1 → conv2 (bias
    0.1) → relu2 → norm2 → pool2 (AlexNet order, LRN before pooling; the
    parameter names as trunk's). Returns pool2."""
    n.conv1 = _conv(data, 96, 11, "conv1", stride=4)
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.norm1 = L.LRN(n.conv1, **LRN)
    n.pool1 = L.Pooling(n.norm1, pool=P.Pooling.MAX, kernel_size=3, stride=2)
    n.conv2 = _conv(n.pool1, 256, 5, "conv2", bias=AUTHORS_RNK_BIAS, pad=2, group=2)
    n.relu2 = L.ReLU(n.conv2, in_place=True)
    n.norm2 = L.LRN(n.conv2, **LRN)
    n.pool2 = L.Pooling(n.norm2, pool=P.Pooling.MAX, kernel_size=3, stride=2)
    return n.pool2


def rnk_net_of(bottoms):
    """Which rnk reading a net is, from its wiring {layer name: bottom
    names} (pycaffe's Net.bottom_names, or a NetParameter's — a saved model
    keeps each layer's bottoms): "authors" when pool1 follows norm1."""
    return "authors" if list(bottoms.get("pool1", ())) == ["norm1"] else "ours"


def model_rnk_net(caffemodel):
    """rnk_net_of a saved .caffemodel's wiring."""
    from caffe.proto import caffe_pb2
    param = caffe_pb2.NetParameter()
    with open(caffemodel, "rb") as f:
        param.ParseFromString(f.read())
    return rnk_net_of({l.name: l.bottom for l in param.layer})


def conv3_to_fc7(n, bottom, prefix="", lr_mult=1, pnames=False, fc7_pre_relu=False, bias=0.0):
    """conv3 384 pad 1 → conv4 384 g2 → conv5 256 g2 → pool5 → fc6 → fc7
    (ReLU + dropout 0.5 each); `bias`: the bias filler of conv4, conv5, fc6
    and fc7. Returns (fc7 after dropout, fc7 before ReLU or None). With
    fc7_pre_relu the fc7 layer writes `fc7_nodp` and the ReLU copies into
    `fc7` (the cross net's contrastive feature)."""
    def k(name):
        return prefix + name

    def pn(name):
        return prefix + name if pnames else None
    n[k("conv3")] = _conv(bottom, 384, 3, pn("conv3"), lr_mult, pad=1)
    n[k("relu3")] = L.ReLU(n[k("conv3")], in_place=True)
    n[k("conv4")] = _conv(n[k("conv3")], 384, 3, pn("conv4"), lr_mult, bias, pad=1, group=2)
    n[k("relu4")] = L.ReLU(n[k("conv4")], in_place=True)
    n[k("conv5")] = _conv(n[k("conv4")], 256, 3, pn("conv5"), lr_mult, bias, pad=1, group=2)
    n[k("relu5")] = L.ReLU(n[k("conv5")], in_place=True)
    n[k("pool5")] = L.Pooling(n[k("conv5")], pool=P.Pooling.MAX, kernel_size=3, stride=2)
    n[k("fc6")] = _fc(n[k("pool5")], FC_DIM, pn("fc6"), lr_mult, bias=bias)
    n[k("relu6")] = L.ReLU(n[k("fc6")], in_place=True)
    n[k("drop6")] = L.Dropout(n[k("fc6")], dropout_ratio=DROPOUT, in_place=True)
    pre = None
    if fc7_pre_relu:
        pre = n[k("fc7_nodp")] = _fc(n[k("fc6")], FC_DIM, pn("fc7"), lr_mult, bias=bias,
                                     name=k("fc7"))
        n[k("fc7")] = L.ReLU(pre, name=k("relu7"))
    else:
        n[k("fc7")] = _fc(n[k("fc6")], FC_DIM, pn("fc7"), lr_mult, bias=bias)
        n[k("relu7")] = L.ReLU(n[k("fc7")], in_place=True)
    n[k("drop7")] = L.Dropout(n[k("fc7")], dropout_ratio=DROPOUT, in_place=True)
    return n[k("fc7")], pre


def classifier(n, pair_maps, prefix="", lr_mult=1, pnames=False, fc7_pre_relu=False):
    """The classification head on concatenated pair maps: conv3 … fc7 → fc8 2.
    Returns (fc8, fc7 before ReLU or None)."""
    fc7, pre = conv3_to_fc7(n, pair_maps, prefix, lr_mult, pnames, fc7_pre_relu)
    n[prefix + "fc8"] = _fc(fc7, 2, prefix + "fc8" if pnames else None, lr_mult, std=0.01)
    return n[prefix + "fc8"], pre


def _python(module, layer, *bottoms, params=None, **kw):
    return L.Python(*bottoms, python_param=dict(module=module, layer=layer,
                                                param_str=json.dumps(params or {}, sort_keys=True)),
                    **kw)


def _triplet_input(n, data, batch, size, source, seed, mean):
    """The triplet batch: from the LMDB (TripletData) or an Input layer."""
    if data == "input":
        n.data = L.Input(shape=dict(dim=[3 * batch, 3, size, size]))
    elif data == "lmdb":
        n.data = _python("layers.triplet_data", "TripletData",
                         params=dict(source=source, batch=batch, size=size, seed=seed, mean=mean))
    else:
        raise ValueError("mtdnet: data must be 'lmdb' or 'input', got %r" % (data,))
    return n.data


def _ranking_loss(n, feature):
    n.normfeat = _python("layers.l2_normalize", "L2Normalize", feature)
    n.tripletloss = _python("layers.triplet_rank_loss", "TripletRankLoss", n.normfeat,
                            loss_weight=LOSS_WEIGHTS["triplet"])


def _pairs(n, norm2):
    n.pair_a, n.pair_b, n.pair_label = _python("layers.triplet_pairs", "TripletPairs", norm2, ntop=3)
    n.concat = L.Concat(n.pair_a, n.pair_b, axis=1)
    return n.concat


# Labels made by Python layers inherit "needs backward" from the layer's other
# tops; Caffe's loss and accuracy layers abort if asked to backpropagate to a
# label, so every consumer says which bottoms take a gradient.
NO_LABEL_GRAD = dict(propagate_down=[True, False])


def _softmax_loss(n, fc8, label):
    n.loss = L.SoftmaxWithLoss(fc8, label, loss_weight=LOSS_WEIGHTS["softmax"], **NO_LABEL_GRAD)
    n.biclass_acc = L.Accuracy(fc8, label, propagate_down=[False, False])


def mtdnet(data="lmdb", batch=BATCH, size=MTDNET_INPUT, source=DEFAULT_SOURCE, seed=0, mean=None):
    """MTDnet train net: triplet ranking on conv1–2 + pair classification."""
    n = caffe.NetSpec()
    norm2 = trunk(n, _triplet_input(n, data, batch, size, source, seed, mean))
    n.feat = _fc(norm2, FEAT_DIM, "feat", bias=0.1)
    _ranking_loss(n, n.feat)
    fc8, _ = classifier(n, _pairs(n, norm2))
    _softmax_loss(n, fc8, n.pair_label)
    return n


def mtdnet_cls(data="lmdb", batch=BATCH, size=MTDNET_INPUT, source=DEFAULT_SOURCE, seed=0, mean=None):
    """MTDnet-cls: the classification task alone, on the same triplets' pairs."""
    n = caffe.NetSpec()
    norm2 = trunk(n, _triplet_input(n, data, batch, size, source, seed, mean))
    fc8, _ = classifier(n, _pairs(n, norm2))
    _softmax_loss(n, fc8, n.pair_label)
    return n


def _rnk_body(n, data, rnk_net="ours"):
    if rnk_net not in RNK_NETS:
        raise ValueError("mtdnet: rnk_net must be one of %s, got %r" % (", ".join(RNK_NETS), rnk_net))
    if rnk_net == "authors":
        fc7, _ = conv3_to_fc7(n, alexnet_trunk(n, data), pnames=True, bias=AUTHORS_RNK_BIAS)
    else:
        fc7, _ = conv3_to_fc7(n, trunk(n, data), pnames=True)
    n.fc8 = _fc(fc7, FEAT_DIM, "fc8", bias=0.1)  # the authors' rnk names its 512-D feature fc8
    return n.fc8


def mtdnet_rnk(data="lmdb", batch=BATCH, size=MTDNET_INPUT, source=DEFAULT_SOURCE, seed=0, mean=None,
               rnk_net="ours"):
    """MTDnet-rnk: the ranking task alone, widened to 5 conv + 3 FC (Table 1);
    `rnk_net`: "ours" or "authors" (module docstring)."""
    n = caffe.NetSpec()
    _ranking_loss(n, _rnk_body(n, _triplet_input(n, data, batch, size, source, seed, mean),
                               rnk_net))
    return n


def mtdnet_cross(data="lmdb", batch=BATCH, size=MTDNET_INPUT, source=DEFAULT_SOURCE,
                 aux_source=DEFAULT_AUX_SOURCE, seed=0, mean=None, source_lr_mult=SOURCE_LR_MULT):
    """MTDnet-cross: MTDnet on target triplets + a `cros_*` source stream on
    source pairs; contrastive loss between target-pair and source-pair fc7
    features with XNOR labels. Each source pair meets the positive and the
    negative pair of one target triplet (its features are used twice)."""
    n = caffe.NetSpec()
    if data == "input":
        n.data = L.Input(shape=dict(dim=[3 * batch, 3, size, size]))
        n.src_data = L.Input(shape=dict(dim=[2 * batch, 3, size, size]))
        n.src_label = L.Input(shape=dict(dim=[batch]))
    elif data == "lmdb":
        n.data, n.src_data, n.src_label = _python(
            "layers.triplet_data", "CrossDomainData", ntop=3,
            params=dict(source=source, aux_source=aux_source, batch=batch, size=size, seed=seed,
                        mean=mean))
    else:
        raise ValueError("mtdnet: data must be 'lmdb' or 'input', got %r" % (data,))
    norm2 = trunk(n, n.data)
    n.feat = _fc(norm2, FEAT_DIM, "feat", bias=0.1)
    _ranking_loss(n, n.feat)
    fc8, fc7_pre = classifier(n, _pairs(n, norm2), fc7_pre_relu=True)
    _softmax_loss(n, fc8, n.pair_label)
    n.normfc7 = _python("layers.l2_normalize", "L2Normalize", fc7_pre)

    src_norm2 = trunk(n, n.src_data, prefix="cros_", lr_mult=source_lr_mult)
    # Source pairs are interleaved (rows 2i, 2i+1), so 2N × 256 × h × w read as
    # N × 512 × h × w is exactly their channel concatenation.
    n.cros_concat = L.Reshape(src_norm2, shape=dict(dim=[-1, 512, 0, 0]))
    cros_fc8, cros_fc7_pre = classifier(n, n.cros_concat, prefix="cros_", lr_mult=source_lr_mult,
                                        pnames=True, fc7_pre_relu=True)
    n.cros_loss = L.SoftmaxWithLoss(cros_fc8, n.src_label, loss_weight=LOSS_WEIGHTS["softmax"],
                                    **NO_LABEL_GRAD)
    n.cros_normfc7 = _python("layers.l2_normalize", "L2Normalize", cros_fc7_pre)
    n.cros_normfc7_db = L.Concat(n.cros_normfc7, n.cros_normfc7, axis=0)
    n.xnor_label = _python("layers.xnor_label", "XnorLabel", n.src_label, n.pair_label)
    n.contrastloss = L.ContrastiveLoss(n.normfc7, n.cros_normfc7_db, n.xnor_label,
                                       margin=CONTRASTIVE_MARGIN,
                                       loss_weight=LOSS_WEIGHTS["contrastive"],
                                       propagate_down=[True, True, False])
    return n


def deploy_pair(batch=1, size=MTDNET_INPUT):
    """Two images (data_a, data_b) → two weight-sharing streams → `prob`
    (N × 2; column 1 = same person)."""
    n = caffe.NetSpec()
    n.data_a = L.Input(shape=dict(dim=[batch, 3, size, size]))
    n.data_b = L.Input(shape=dict(dim=[batch, 3, size, size]))
    a = trunk(n, n.data_a)
    b = trunk(n, n.data_b, suffix="_p")
    n.concat = L.Concat(a, b, axis=1)
    fc8, _ = classifier(n, n.concat)
    n.prob = L.Softmax(fc8)
    return n


def deploy_feat(batch=1, size=MTDNET_INPUT):
    """One image → `norm2` (CIR's per-image maps) and the L2-normalised 512-D
    ranking feature `normfeat` (MTDnet-trp)."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[batch, 3, size, size]))
    n.feat = _fc(trunk(n, n.data), FEAT_DIM, "feat", bias=0.1)
    n.normfeat = _python("layers.l2_normalize", "L2Normalize", n.feat)
    return n


def deploy_head(batch=1, size=MTDNET_INPUT):
    """The classification head alone: `concat` (N × 512 × h × w, a pair's two
    norm2 maps) → `prob`."""
    side = norm2_size(size)
    n = caffe.NetSpec()
    n.concat = L.Input(shape=dict(dim=[batch, 512, side, side]))
    fc8, _ = classifier(n, n.concat)
    n.prob = L.Softmax(fc8)
    return n


def deploy_rnk_feat(batch=1, size=MTDNET_INPUT, rnk_net="ours"):
    """MTDnet-rnk test: one image → L2-normalised 512-D `normfeat`."""
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[batch, 3, size, size]))
    n.normfeat = _python("layers.l2_normalize", "L2Normalize", _rnk_body(n, n.data, rnk_net))
    return n


def solver(net, max_iter, scale=1.0, **kw):
    """Solver text with MTDnet's schedule (networks/solver.py); `net`
    relative to the solver file."""
    return schedules.to_text(schedules.mtdnet_solver(net, max_iter, scale, **kw))


TRAIN_NETS = {"mtdnet": mtdnet, "mtdnet_rnk": mtdnet_rnk, "mtdnet_cls": mtdnet_cls,
              "mtdnet_cross": mtdnet_cross}
DEPLOY_NETS = {"deploy_pair": deploy_pair, "deploy_feat": deploy_feat, "deploy_head": deploy_head,
               "deploy_rnk_feat": deploy_rnk_feat}


def net_text(netspec, name):
    return 'name: "%s"\n%s' % (name, netspec.to_proto())


def generate(size=MTDNET_INPUT, batch=BATCH, source=DEFAULT_SOURCE, aux_source=DEFAULT_AUX_SOURCE):
    """{file name: text} of every train net, deploy net and solver."""
    files = {}
    for name, fn in TRAIN_NETS.items():
        kw = dict(batch=batch, size=size, source=source)
        if name == "mtdnet_cross":
            kw["aux_source"] = aux_source
        files[name + "_train.prototxt"] = net_text(fn(**kw), name)
    for name, fn in DEPLOY_NETS.items():
        files[name + ".prototxt"] = net_text(fn(size=size), name)
    # the authors' reading of MTDnet-rnk (module docstring)
    files["mtdnet_rnk_authors_train.prototxt"] = net_text(
        mtdnet_rnk(batch=batch, size=size, source=source, rnk_net="authors"), "mtdnet_rnk_authors")
    files["deploy_rnk_feat_authors.prototxt"] = net_text(
        deploy_rnk_feat(size=size, rnk_net="authors"), "deploy_rnk_feat_authors")
    for name in ("mtdnet", "mtdnet_rnk", "mtdnet_cls"):
        files["%s_solver_cuhk03.prototxt" % name] = solver(name + "_train.prototxt", schedules.MTDNET_CUHK03_ITERS)
        files["%s_solver_small.prototxt" % name] = solver(name + "_train.prototxt", schedules.MTDNET_SMALL_ITERS)
    files["mtdnet_cross_solver_small.prototxt"] = solver("mtdnet_cross_train.prototxt", schedules.MTDNET_SMALL_ITERS)
    # the authors' PRID2011 solver (networks/solver.py PRID_LRS)
    files["mtdnet_solver_prid_authors.prototxt"] = solver(
        "mtdnet_train.prototxt", schedules.MTDNET_SMALL_ITERS,
        base_lr=schedules.mtdnet_prid_lr("authors", "mtdnet"))
    return files


def write(out_dir=OUT_DIR, **kw):
    """Write every generated file into `out_dir` (each atomically)."""
    return write_files(generate(**kw), out_dir)

