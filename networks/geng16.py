"""NetSpec generator of the Geng16 family (Geng, Wang, Xiang & Tian 2016,
§3.1 and §4.1, Fig. 1) and of its solvers:

    python -m tools.netgen geng16 [--out prototxt/geng16] [--num-ids 751]
                                  [--source LMDB] [--val-source LMDB]

One base network over a K × M identity-sampled batch (the "Siamese" branches
share every parameter, so one pass over the batch serves all pairs). Heads on
each base output — GoogLeNet's pool5/7x7_s1 and the auxiliary loss1/fc,
loss2/fc (Geng16 §4.1 "Auxiliary losses") — for each selected loss:

- SID: random dropout → N-way InnerProduct `cls_<head>_<N>` → softmax loss.
  The name carries N, so a model trained on another identity set never
  loads into it (Geng16 §4.1: the softmax layer "has to be replaced with a
  randomly initialised one").
- PV: in-batch pairs (layers/pair_generation.py) → pairwise-consistent
  dropout (layers/pair_dropout.py) → element-wise subtraction → ReLU →
  FC 1024 → FC 2 → softmax loss (label 1 = same person). The text names no
  non-linearity between the two FC layers and none is added.
- TL: batch-all triplets → dropout with one mask per triplet → triplet
  loss (layers/triplet_loss.py); Table 4 and 5 only.

Arguments select the variants: base ("googlenet" | "dgdnet", Table 8),
losses (any of sid/pv/tl, Table 4), pv_dropout ("consistent" | "random",
Table 5), pairs ("unordered" | "ordered": how §5.2's "3,968 positive and
negative pairs … respectively" is read, layers/pair_generation.py), num_ids,
size, loss weights, step (1: only the `cls_*` layers learn, §4.1
"Two-stepped fine-tuning"; with step1_pv the new PV layers too; 2: all
layers), data ("lmdb": the IdentitySampledData layer; "input": Input
layers for tests).
"""
import json
import os

from networks import write_files
from common.config import GENG16_CROP, ROOT
import caffe
from caffe import layers as L
from caffe.proto import caffe_pb2
from networks import dgdnet as dgdnet_base
from networks import googlenet as googlenet_base
from networks import solver as schedules
from layers.pair_generation import PAIRS

K = 32                  # identities per batch (§4.1 "we randomly select 32 people")
M = 2                   # images per identity (§4.1 "two images for each person")
NUM_IDS = 751           # Market-1501's training identities, the default target
PV_WEIGHT = 3.0         # verification : classification = 3 : 1 (§5.2 "Parameter Settings")
SID_WEIGHT = 1.0
TL_WEIGHT = 1.0         # not given by Geng16; equal to SID
AUX_WEIGHT = googlenet_base.AUX_LOSS_WEIGHT  # 0.3, GoogLeNet's auxiliary weight (docs/reproducing.md)
PV_FC_DIM = 1024        # "a 1024-dimensional FC layer, followed by a two-node softmax" (§4.1)
LOSSES = ("sid", "pv", "tl")
PV_DROPOUTS = ("consistent", "random")
HEADS = ("main", "aux1", "aux2")

# Per base: builder, default input size, dropout ratio per head (GoogLeNet's
# own 0.4 after pool5 and 0.7 after loss{1,2}/fc; DGDNet's 0.5 before fc8).
BASES = {
    "googlenet": (googlenet_base.googlenet, GENG16_CROP,
                  {"main": googlenet_base.MAIN_DROPOUT, "aux1": googlenet_base.AUX_DROPOUT,
                   "aux2": googlenet_base.AUX_DROPOUT}),
    "dgdnet": (dgdnet_base.dgdnet, dgdnet_base.INPUT_SIZE, {"main": dgdnet_base.DROPOUT}),
}
FEATURE = {"googlenet": "pool5/7x7_s1", "dgdnet": "fc7"}

DEFAULT_SOURCE = "data/geng16/train.lmdb"      # relative to where training runs
DEFAULT_VAL_SOURCE = "data/geng16/val.lmdb"
OUT_DIR = os.path.join(ROOT, "prototxt", "geng16")

PARAMS = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
NO_LABEL_GRAD = dict(propagate_down=[True, False])  # Caffe's losses abort on a label gradient


def cls_name(head, num_ids):
    """The N-way classifier of a head: its name changes with N."""
    return "cls_%s_%d" % (head, num_ids)


def _python(module, layer, *bottoms, params=None, **kw):
    return L.Python(*bottoms, python_param=dict(module=module, layer=layer,
                                                param_str=json.dumps(params or {}, sort_keys=True)),
                    **kw)


def _fc(bottom, nout):
    return L.InnerProduct(bottom, num_output=nout, param=PARAMS, weight_filler=dict(type="xavier"),
                          bias_filler=dict(type="constant", value=0))


# LMDB image sizes: a margin around each base's input for the data layer's
# random crop (GoogLeNet's 224 crops of 256 × 256 images, as BVLC's ImageNet
# recipe; DGDNet's 144 × 56 input in 160 × 64, as Xiao et al.'s).
LMDB_SIZE = {"googlenet": (256, 256), "dgdnet": (160, 64)}


def _hw(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def input_shape(base="googlenet", size=None):
    """(height, width) of a base's input at `size` (None: the base's own)."""
    return _hw(BASES[base][1] if size is None else size)


def _data(n, data, batch, size, source, k, m, seed):
    h, w = _hw(size)
    if data == "input":
        n.data = L.Input(shape=dict(dim=[batch, 3, h, w]))
        n.label = L.Input(shape=dict(dim=[batch]))
    elif data == "lmdb":
        n.data, n.label = _python("layers.identity_sampled_data", "IdentitySampledData", ntop=2,
                                  params=dict(source=source, k=k, m=m, seed=seed,
                                              crop=h if h == w else [h, w]))
    else:
        raise ValueError("geng16: data must be 'lmdb' or 'input', got %r" % (data,))


def sid_head(n, head, feature, label, num_ids, ratio, weight):
    """Random dropout → N-way classifier → softmax loss."""
    n[head + "/sid_drop"] = L.Dropout(feature, dropout_ratio=ratio)
    n[cls_name(head, num_ids)] = _fc(n[head + "/sid_drop"], num_ids)
    n[head + "/sid_loss"] = L.SoftmaxWithLoss(n[cls_name(head, num_ids)], label,
                                              loss_weight=weight, **NO_LABEL_GRAD)


def pv_head(n, head, feature, label, m, ratio, consistent, weight, seed, pairs=PAIRS[0]):
    """In-batch pairs → (pairwise-consistent) dropout → a − b → ReLU → FC 1024 → FC 2 → softmax."""
    params = dict(m=m, seed=seed)
    if pairs != PAIRS[0]:  # the default stays implicit, so nets and stage records made before match
        params["pairs"] = pairs
    a, b, same = _python("layers.pair_generation", "PairGeneration", feature, label, ntop=3,
                         name=head + "/pairs", params=params)
    n[head + "/pair_a"], n[head + "/pair_b"], n[head + "/pair_label"] = a, b, same
    da, db = _python("layers.pair_dropout", "PairwiseConsistentDropout", a, b, ntop=2,
                     name=head + "/pv_drop",
                     params=dict(ratio=ratio, consistent=consistent, seed=seed + 1))
    n[head + "/pv_drop_a"], n[head + "/pv_drop_b"] = da, db
    n[head + "/pv_diff"] = L.Eltwise(da, db, operation=caffe_pb2.EltwiseParameter.SUM,
                                     coeff=[1, -1])
    n[head + "/pv_relu"] = L.ReLU(n[head + "/pv_diff"], in_place=True)
    n[head + "/pv_fc"] = _fc(n[head + "/pv_diff"], PV_FC_DIM)
    n[head + "/pv_cls"] = _fc(n[head + "/pv_fc"], 2)
    n[head + "/pv_loss"] = L.SoftmaxWithLoss(n[head + "/pv_cls"], same, loss_weight=weight,
                                             **NO_LABEL_GRAD)


def tl_head(n, head, feature, label, m, ratio, consistent, weight, seed):
    """Batch-all triplets → dropout (one mask per triplet when consistent) → triplet loss."""
    tops = _python("layers.triplet_loss", "InBatchTriplets", feature, label, ntop=3,
                   name=head + "/triplets", params=dict(m=m))
    names = [head + "/anchor", head + "/positive", head + "/negative"]
    for name, t in zip(names, tops):
        n[name] = t
    dropped = _python("layers.pair_dropout", "PairwiseConsistentDropout", *tops, ntop=3,
                      name=head + "/tl_drop",
                      params=dict(ratio=ratio, consistent=consistent, seed=seed + 2))
    for name, t in zip(names, dropped):
        n[name.replace("/", "/tl_drop_")] = t
    n[head + "/tl_loss"] = _python("layers.triplet_loss", "TripletLoss", *dropped,
                                   loss_weight=weight)


def _check(base, losses, pv_dropout, pairs):
    if base not in BASES:
        raise ValueError("geng16: base must be one of %s, got %r" % (", ".join(BASES), base))
    bad = sorted(set(losses) - set(LOSSES))
    if bad or not losses:
        raise ValueError("geng16: losses must be a non-empty subset of %s, got %r"
                         % (", ".join(LOSSES), losses))
    if pv_dropout not in PV_DROPOUTS:
        raise ValueError("geng16: pv_dropout must be one of %s, got %r"
                         % (", ".join(PV_DROPOUTS), pv_dropout))
    if pairs not in PAIRS:
        raise ValueError("geng16: pairs must be one of %s, got %r" % (", ".join(PAIRS), pairs))


def geng16(base="googlenet", losses=("sid", "pv"), pv_dropout="consistent", num_ids=NUM_IDS,
           size=None, data="lmdb", source=DEFAULT_SOURCE, k=K, m=M, seed=0,
           sid_weight=SID_WEIGHT, pv_weight=PV_WEIGHT, tl_weight=TL_WEIGHT, aux_weight=AUX_WEIGHT,
           pairs=PAIRS[0]):
    """The training NetSpec (see the module docstring)."""
    _check(base, losses, pv_dropout, pairs)
    body, default_size, ratios = BASES[base]
    size = default_size if size is None else size
    n = caffe.NetSpec()
    _data(n, data, k * m, size, source, k, m, seed)
    features = body(n, n.data, size)
    consistent = pv_dropout == "consistent"
    for i, (head, feature) in enumerate(zip(HEADS, features)):
        if feature is None:
            continue
        scale = 1.0 if head == "main" else aux_weight
        head_seed = seed + 10 * (i + 1)
        if "sid" in losses:
            sid_head(n, head, feature, n.label, num_ids, ratios[head], sid_weight * scale)
        if "pv" in losses:
            pv_head(n, head, feature, n.label, m, ratios[head], consistent, pv_weight * scale,
                    head_seed, pairs)
        if "tl" in losses:
            tl_head(n, head, feature, n.label, m, ratios[head], consistent, tl_weight * scale,
                    head_seed)
    return n


def deploy(base="googlenet", batch=1, size=None):
    """Feature extraction: one image → the base's main feature
    (googlenet: pool5/7x7_s1, N × 1024 × 1 × 1; dgdnet: fc7, N × 256)."""
    body, default_size, _ = BASES[base]
    h, w = _hw(default_size if size is None else size)
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[batch, 3, h, w]))
    body(n, n.data, (h, w) if base == "dgdnet" else h, aux=False)
    return n


LEARNT = ("Convolution", "InnerProduct", "Scale", "Bias", "PReLU", "Deconvolution", "Embed")


def step1_learns(name, step1_pv=False):
    """Whether layer `name` learns in step 1: the new `cls_*` classifiers
    (Geng16 §4.1: "train only the newly added softmax layer", the default),
    and with `step1_pv` the new PV layers (`<head>/pv_fc`, `<head>/pv_cls`)
    too, which otherwise stay at their random initialisation until step 2."""
    return name.startswith("cls_") or (step1_pv and "/pv_" in name)


def net_param(netspec, name, step=2, step1_pv=False):
    """NetParameter of a NetSpec; step 1 freezes every layer but the new ones
    (step1_learns; lr_mult and decay_mult 0; Geng16 §4.1: "we freeze all
    other layers and train only the newly added softmax layer"). BatchNorm
    layers (DGDNet) also use their stored statistics in step 1: their
    running averages would otherwise change, and frozen means unchanged."""
    param = netspec.to_proto()
    param.name = name
    if step == 1:
        for layer in param.layer:
            if layer.type in LEARNT and not layer.param:
                raise ValueError("geng16: layer '%s' (%s) has no param specs, so step 1 "
                                 "could not freeze it" % (layer.name, layer.type))
            if not step1_learns(layer.name, step1_pv):
                for p in layer.param:
                    p.lr_mult = 0
                    p.decay_mult = 0
            if layer.type == "BatchNorm":
                layer.batch_norm_param.use_global_stats = True
    elif step != 2:
        raise ValueError("geng16: step must be 1 or 2, got %r" % (step,))
    return param


def net_text(netspec, name, step=2, step1_pv=False):
    return str(net_param(netspec, name, step, step1_pv))


# Geng16 §5.2 "Training setting" (values kept in networks/solver.py).
BASE_LR = schedules.GENG16_BASE_LR        # 0.001
GAMMA = schedules.GENG16_GAMMA            # ×0.1 …
STEPSIZE = schedules.GENG16_STEPSIZE      # … every 40K iterations


def solver_text(net, max_iter, stepsize=STEPSIZE, base_lr=BASE_LR, gamma=GAMMA, **kw):
    """Solver prototxt text for one fine-tuning step on `net` (relative to
    the solver file): step policy, Geng16's lr schedule."""
    return schedules.to_text(schedules.solver_param(
        net, base_lr, max_iter, "step", stepsize, gamma, schedules.GENG16_MOMENTUM,
        schedules.GENG16_WEIGHT_DECAY, **kw))


# Train nets written by write_all: the paper's model, the ablations of
# Tables 4 (losses), 5 (dropout) and 8 (base network), and the other reading
# of §5.2's pair count (ordered pairs).
VARIANTS = {
    "geng16": dict(),
    "geng16_sid": dict(losses=("sid",)),
    "geng16_pv": dict(losses=("pv",)),
    "geng16_tl": dict(losses=("tl",)),
    "geng16_sid_tl": dict(losses=("sid", "tl")),
    "geng16_pv_tl": dict(losses=("pv", "tl")),
    "geng16_sid_pv_tl": dict(losses=("sid", "pv", "tl")),
    "geng16_random": dict(pv_dropout="random"),
    "geng16_sid_tl_random": dict(losses=("sid", "tl"), pv_dropout="random"),
    "dgdnet_sid": dict(base="dgdnet", losses=("sid",)),
    "dgdnet": dict(base="dgdnet"),
    "geng16_ordered": dict(pairs="ordered"),
}
# Step iteration counts (§5.2): ImageNet → large set and large → small set.
SCHEDULES = {"large": (schedules.GENG16_LARGE_STEP1_ITERS, schedules.GENG16_LARGE_STEP2_ITERS),
             "small": (schedules.GENG16_SMALL_STEP1_ITERS, schedules.GENG16_SMALL_STEP2_ITERS)}


def generate(num_ids=NUM_IDS, source=DEFAULT_SOURCE, val_source=DEFAULT_VAL_SOURCE):
    """{file name: text} of every train/val net, deploy net and solver."""
    files = {}
    for name, kw in VARIANTS.items():
        spec = geng16(num_ids=num_ids, source=source, **kw)
        files[name + "_train.prototxt"] = net_text(spec, name)
    for name in ("geng16", "dgdnet"):
        kw = VARIANTS[name]
        files[name + "_step1_train.prototxt"] = net_text(
            geng16(num_ids=num_ids, source=source, **kw), name + "_step1", step=1)
        files[name + "_val.prototxt"] = net_text(
            geng16(num_ids=num_ids, source=val_source, **kw), name + "_val")
        files[name + "_deploy.prototxt"] = net_text(deploy(kw.get("base", "googlenet")),
                                                    name + "_deploy")
        if name == "geng16":  # step 1 that also trains the new PV layers (not the paper's)
            files["geng16_step1_pv_train.prototxt"] = net_text(
                geng16(num_ids=num_ids, source=source, **kw), "geng16_step1_pv", step=1,
                step1_pv=True)
        for sched, (iters1, iters2) in SCHEDULES.items():
            files["%s_solver_%s_step1.prototxt" % (name, sched)] = solver_text(
                name + "_step1_train.prototxt", iters1, snapshot_prefix=name + "_step1")
            files["%s_solver_%s_step2.prototxt" % (name, sched)] = solver_text(
                name + "_train.prototxt", iters2, snapshot_prefix=name + "_step2")
    return files


def write_all(out_dir=OUT_DIR, **kw):
    """Write every generated file into `out_dir` (each atomically)."""
    return write_files(generate(**kw), out_dir)

