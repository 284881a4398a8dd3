"""NetSpec generator of Geng16's alternatives to co-training (§5.6, Table 9).

The two models Geng16 compares with its unsupervised co-training on VIPeR:

    python -m tools.netgen unsupervised [--out prototxt/unsupervised] [--num-ids 751]
                                        [--source LMDB] [--target LMDB]

- CNN + autoencoder: "the input layer of the autoencoder is the feature
  output of the base network; the middle layer dimension is set to 512 and
  the output layer has the same dimension as the input layer (1,024)",
  trained to minimise J(x) = ½‖φ(x) − f_d(f_e(φ(x)))‖²₂ (Eq. 4). Here
  Input `feature` → `encode` InnerProduct 512 (+ a nonlinearity, see
  ACTIVATIONS) → `decode` InnerProduct dim → Caffe's EuclideanLoss against
  the input, which is 1/(2N) Σₙ‖·‖²: Eq. 4 averaged over the batch. The
  features come from numpy (unsupervised/autoencoder.py fills the
  Input blob), so there is no data layer. The deploy net gives the code
  f_e(φ(x)) in blob `encode`, used for matching.
- Domain-adversarial CNN (Ganin & Lempitsky 2015, Geng16 ref. [9]): "a
  domain classifier connected to the feature extractor (i.e. our base
  network) via a gradient reversal layer". A source batch (K identities × M
  images, labelled) and a target batch (unlabelled: an LMDB in which every
  image has its own label, sampled with M = 1 so that no identity structure
  leaks; the label is silenced) are concatenated on the batch axis and go
  through one base network. Its feature is sliced back: the source rows get
  Geng16's SID head (networks/geng16.sid_head, main head only), all rows
  go through GradientReversal (layers/gradient_reversal.py) → FC → ReLU →
  FC 2 `domain_cls` → softmax against the domain label (0 source, 1 target).
"""
import os

import caffe
from caffe import layers as L
from common.config import ROOT
from networks import geng16, googlenet as googlenet_base, solver as schedules, write_files

# --- autoencoder ---------------------------------------------------------

HIDDEN = 512                              # "the middle layer dimension is set to 512" (§5.6)
DIM = googlenet_base.FEATURE_DIM          # 1024, GoogLeNet's pool5 (dgdnet: 256)
BATCH = geng16.K * geng16.M               # not given for the AE; Geng16's own batch size
# The paper names no nonlinearity. Sigmoid is the classic autoencoder code
# (Caffe's own examples/mnist autoencoder); with none the AE would only
# span PCA's subspace, and a ReLU code unit that dies never recovers.
ACTIVATIONS = {"sigmoid": L.Sigmoid, "relu": L.ReLU, "none": None}
ACTIVATION = "sigmoid"
# Ours (the paper gives no AE schedule), measured on two synthetic sets of
# 1024-D non-negative features of GoogLeNet pool5's scale (sparse, up to
# ~8; dense, up to ~3.5), batch 64, momentum 0.9: 0.002 divides the loss by
# 18 and 10 in 5K steps, the best compromise of 0.001–0.005; 0.01 stalls
# near the mean-only reconstruction and from 0.02 the sigmoid codes saturate.
AE_BASE_LR = 0.002


def _encoder(n, dim, hidden, batch, activation):
    if activation not in ACTIVATIONS:
        raise ValueError("autoencoder: activation must be one of %s, got %r"
                         % (", ".join(ACTIVATIONS), activation))
    n.feature = L.Input(shape=dict(dim=[batch, dim]))
    n.encode = geng16._fc(n.feature, hidden)
    if ACTIVATIONS[activation] is not None:
        n.encode_act = ACTIVATIONS[activation](n.encode, in_place=True)


def autoencoder(dim=DIM, hidden=HIDDEN, batch=BATCH, activation=ACTIVATION):
    """Training NetSpec: feature → encode → decode → EuclideanLoss (Eq. 4)."""
    n = caffe.NetSpec()
    _encoder(n, dim, hidden, batch, activation)
    n.decode = geng16._fc(n.encode, dim)   # linear: pool5 values are unbounded above
    n.loss = L.EuclideanLoss(n.decode, n.feature)
    return n


def autoencoder_deploy(dim=DIM, hidden=HIDDEN, batch=1, activation=ACTIVATION):
    """Deploy NetSpec: feature → the hidden code in blob `encode`."""
    n = caffe.NetSpec()
    _encoder(n, dim, hidden, batch, activation)
    return n


def autoencoder_solver_text(net, max_iter, base_lr=AE_BASE_LR, seed=None):
    """SGD solver for the AE: fixed lr, Geng16's momentum and weight decay,
    no snapshots (the caller saves the final weights)."""
    p = schedules.solver_param(net, base_lr, max_iter, "fixed",
                               momentum=schedules.GENG16_MOMENTUM,
                               weight_decay=schedules.GENG16_WEIGHT_DECAY,
                               snapshot_prefix="autoencoder", random_seed=seed)
    p.snapshot = 0
    return schedules.to_text(p)


# --- domain-adversarial CNN -----------------------------------------------

DEFAULT_TARGET = "data/geng16/target.lmdb"   # relative to where training runs
# Ours: Ganin & Lempitsky leave the domain loss unweighted and set the
# trade-off with the reversal coefficient, so both losses weigh 1 here.
DOMAIN_WEIGHT = 1.0
DOMAIN_FC_DIM = geng16.PV_FC_DIM             # ours: as wide as Geng16's PV head
SOURCE, TARGET = 0, 1                        # domain labels


def _inputs(n, data, batch, target_batch, size, source, target, k, m, seed):
    """Tops source_data/source_label (K·M rows) and target_data/target_label."""
    h, w = geng16._hw(size)
    if data == "input":
        n.source_data = L.Input(shape=dict(dim=[batch, 3, h, w]))
        n.source_label = L.Input(shape=dict(dim=[batch]))
        n.target_data = L.Input(shape=dict(dim=[target_batch, 3, h, w]))
        n.target_label = L.Input(shape=dict(dim=[target_batch]))
    elif data == "lmdb":
        crop = h if h == w else [h, w]
        n.source_data, n.source_label = geng16._python(
            "layers.identity_sampled_data", "IdentitySampledData", ntop=2,
            params=dict(source=source, k=k, m=m, seed=seed, crop=crop))
        # every target image is its own "identity": m = 1 draws plain random images
        n.target_data, n.target_label = geng16._python(
            "layers.identity_sampled_data", "IdentitySampledData", ntop=2,
            params=dict(source=target, k=target_batch, m=1, seed=seed + 1, crop=crop))
    else:
        raise ValueError("domain_adversarial: data must be 'lmdb' or 'input', got %r" % (data,))


def domain_adversarial(base="googlenet", num_ids=geng16.NUM_IDS, size=None,
                       source=geng16.DEFAULT_SOURCE, target=DEFAULT_TARGET, k=geng16.K,
                       m=geng16.M, target_batch=None, coeff=1.0, seed=0, data="lmdb"):
    """The training NetSpec (see the module docstring); `target_batch`
    defaults to K·M, half of each batch from either domain as in Ganin &
    Lempitsky."""
    if base not in geng16.BASES:
        raise ValueError("domain_adversarial: base must be one of %s, got %r"
                         % (", ".join(geng16.BASES), base))
    body, default_size, ratios = geng16.BASES[base]
    size = default_size if size is None else size
    batch = k * m
    target_batch = batch if target_batch is None else target_batch
    n = caffe.NetSpec()
    _inputs(n, data, batch, target_batch, size, source, target, k, m, seed)
    n.silence_target_label = L.Silence(n.target_label, ntop=0)   # target labels are not used
    n.data = L.Concat(n.source_data, n.target_data, axis=0)
    feature, _, _ = body(n, n.data, size, aux=False)
    n.source_feature, n.target_feature = L.Slice(feature, ntop=2, axis=0, slice_point=[batch])
    n.silence_target_feature = L.Silence(n.target_feature, ntop=0)  # only the domain head sees it
    geng16.sid_head(n, "main", n.source_feature, n.source_label, num_ids, ratios["main"],
                    geng16.SID_WEIGHT)
    n.domain_source, n.domain_target = L.DummyData(
        ntop=2, shape=[dict(dim=[batch]), dict(dim=[target_batch])],
        data_filler=[dict(type="constant", value=SOURCE), dict(type="constant", value=TARGET)])
    n.domain_label = L.Concat(n.domain_source, n.domain_target, axis=0)
    n.grl = geng16._python("layers.gradient_reversal", "GradientReversal", feature,
                           params=dict(coeff=coeff))
    n.domain_fc = geng16._fc(n.grl, DOMAIN_FC_DIM)
    n.domain_relu = L.ReLU(n.domain_fc, in_place=True)
    n.domain_cls = geng16._fc(n.domain_fc, 2)
    n.domain_loss = L.SoftmaxWithLoss(n.domain_cls, n.domain_label, loss_weight=DOMAIN_WEIGHT,
                                      **geng16.NO_LABEL_GRAD)
    return n


# --- files ------------------------------------------------------------------

OUT_DIR = os.path.join(ROOT, "prototxt", "unsupervised")
# Transfer into a small target set (VIPeR): Geng16's small-set step-2 length.
DA_ITERS = schedules.GENG16_SMALL_STEP2_ITERS


def generate(num_ids=geng16.NUM_IDS, source=geng16.DEFAULT_SOURCE, target=DEFAULT_TARGET):
    """{file name: text} of the AE train/deploy nets and the
    domain-adversarial GoogLeNet train net and solver."""
    return {
        "autoencoder_train.prototxt": geng16.net_text(autoencoder(), "autoencoder"),
        "autoencoder_deploy.prototxt": geng16.net_text(autoencoder_deploy(),
                                                       "autoencoder_deploy"),
        "domain_adversarial_train.prototxt": geng16.net_text(
            domain_adversarial(num_ids=num_ids, source=source, target=target),
            "domain_adversarial"),
        "domain_adversarial_solver.prototxt": geng16.solver_text(
            "domain_adversarial_train.prototxt", DA_ITERS, snapshot_prefix="domain_adversarial"),
    }


def write_all(out_dir=OUT_DIR, **kw):
    """Write every generated file into `out_dir` (each atomically)."""
    return write_files(generate(**kw), out_dir)

