"""The DGDNet base of Geng16 Table 8 (§5.5): the bespoke Re-ID network of
Xiao, Li, Ouyang & Wang, "Learning Deep Feature Representations with Domain
Guided Dropout for Person Re-identification", CVPR 2016, Table 1 (layer
layout as in the authors' Cysu/dgd_person_reid models).

    input 144 × 56 → conv1–conv3 3×3 32 (BN, ReLU) → pool1 2×2 s2
    → inception 1a, 1b(s2), 2a, 2b(s2), 3a, 3b(s2) → global average pool
    → fc7 256 (BN, ReLU) = the feature

Inception "a" modules: 1×1, 3×3, double 3×3 and average-pool + 1×1
branches of equal width; "b" modules: stride-2 3×3, stride-2 double 3×3 and
a 3×3 max pool. The authors' custom "BN" layer is BVLC's BatchNorm + Scale
here. Geng16 uses only this base network (footnote 4), so it carries no
auxiliary branches: DGDNet exposes the main feature only and Geng16's
heads attach to it alone (2 losses for SID + PV instead of 6).
"""
from caffe import layers as L, params as P

INPUT_SIZE = (144, 56)   # Xiao et al. Table 1 input (height, width)
FEATURE_DIM = 256        # fc7 (Xiao et al. Table 1)
STEM = 32                # conv1–conv3 channels
# Branch width of each inception stage 1, 2, 3 (Table 1: 256/384, 512/768, 1024/1536 outputs).
WIDTH = {"1": 64, "2": 128, "3": 256}
DROPOUT = 0.5            # dropout before the authors' classifier (fc8)

PARAMS = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
# BN's learnt scale and shift: spelt out so that a frozen step can zero them,
# and not weight-decayed (they are not filters).
SCALE_PARAMS = [dict(lr_mult=1, decay_mult=0), dict(lr_mult=1, decay_mult=0)]


def conv_bn(n, name, bottom, nout, ks, stride=1, pad=0):
    """Convolution → BatchNorm + Scale (`name`_bn, `name`_scale) → ReLU, in place."""
    kw = dict(stride=stride) if stride != 1 else {}
    if pad:
        kw["pad"] = pad
    n[name] = L.Convolution(bottom, num_output=nout, kernel_size=ks, param=PARAMS,
                            weight_filler=dict(type="xavier"),
                            bias_filler=dict(type="constant", value=0.2), **kw)
    return _bn_relu(n, name)


def _bn_relu(n, name):
    base, _, leaf = name.rpartition("/")
    prefix = base + "/" if base else ""
    n[name + "_bn"] = L.BatchNorm(n[name], in_place=True)
    n[name + "_scale"] = L.Scale(n[name], bias_term=True, param=SCALE_PARAMS, in_place=True)
    n[prefix + "relu_" + leaf] = L.ReLU(n[name], in_place=True)
    return n[name]


def _stride2_side(side):
    return (side - 1) // 2 + 1     # 3×3 stride-2 pad-1 convolution


def _pool_pad(side):
    """Pad of the 3×3 stride-2 max pool of a "b" module so that it lines up
    with its stride-2 convolutions (Caffe pooling rounds up)."""
    for pad in (0, 1):
        if -(-(side + 2 * pad - 3) // 2) + 1 == _stride2_side(side):
            return pad
    raise ValueError("dgdnet: no pool padding aligns a side of %d" % side)


def inception_a(n, name, bottom, w):
    p = "inception_%s/" % name
    b1 = conv_bn(n, p + "1x1", bottom, w, 1)
    r = conv_bn(n, p + "3x3_reduce", bottom, w, 1)
    b3 = conv_bn(n, p + "3x3", r, w, 3, pad=1)
    r = conv_bn(n, p + "double_3x3_reduce", bottom, w, 1)
    r = conv_bn(n, p + "double_3x3_1", r, w, 3, pad=1)
    bd = conv_bn(n, p + "double_3x3_2", r, w, 3, pad=1)
    n[p + "pool"] = L.Pooling(bottom, pool=P.Pooling.AVE, kernel_size=3, stride=1, pad=1)
    bp = conv_bn(n, p + "pool_proj", n[p + "pool"], w, 1)
    n[p + "output"] = L.Concat(b1, b3, bd, bp)
    return n[p + "output"]


def inception_b(n, name, bottom, w, hw):
    """The stride-2 module; `hw` is the input's (height, width)."""
    p = "inception_%s/" % name
    r = conv_bn(n, p + "3x3_reduce", bottom, w, 1)
    b3 = conv_bn(n, p + "3x3", r, w, 3, stride=2, pad=1)
    r = conv_bn(n, p + "double_3x3_reduce", bottom, w, 1)
    r = conv_bn(n, p + "double_3x3_1", r, w, 3, pad=1)
    bd = conv_bn(n, p + "double_3x3_2", r, w, 3, stride=2, pad=1)
    pad_h, pad_w = _pool_pad(hw[0]), _pool_pad(hw[1])
    kw = dict(pad_h=pad_h, pad_w=pad_w) if (pad_h or pad_w) else {}
    n[p + "pool"] = L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=3, stride=2, **kw)
    n[p + "output"] = L.Concat(b3, bd, n[p + "pool"])
    return n[p + "output"], (_stride2_side(hw[0]), _stride2_side(hw[1]))


def dgdnet(n, data, size=INPUT_SIZE, aux=True):
    """The DGDNet body on `data` (N × 3 × h × w); returns (fc7, None, None):
    the 256-D feature and no auxiliary features (`aux` is accepted for a
    call shared with googlenet(); DGDNet has none either way)."""
    h, w = (size, size) if isinstance(size, int) else size
    x = conv_bn(n, "conv1", data, STEM, 3, pad=1)
    x = conv_bn(n, "conv2", x, STEM, 3, pad=1)
    x = conv_bn(n, "conv3", x, STEM, 3, pad=1)
    n.pool1 = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    hw = (h // 2, w // 2)
    x = n.pool1
    for stage in ("1", "2", "3"):
        x = inception_a(n, stage + "a", x, WIDTH[stage])
        x, hw = inception_b(n, stage + "b", x, WIDTH[stage], hw)
    n.global_pool = L.Pooling(x, pool=P.Pooling.AVE, global_pooling=True)
    n.fc7 = L.InnerProduct(n.global_pool, num_output=FEATURE_DIM, param=PARAMS,
                           weight_filler=dict(type="xavier"),
                           bias_filler=dict(type="constant", value=0))
    _bn_relu(n, "fc7")
    return n.fc7, None, None
