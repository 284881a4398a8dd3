"""GoogLeNet exactly as BVLC `bvlc_googlenet` (Szegedy et al. 2015; the base
network of Geng16 §3.1, "a standard GoogleNet").

Layer names, fillers, lr/decay multipliers and parameter shapes are those of
Caffe's models/bvlc_googlenet/train_val.prototxt, so bvlc_googlenet.caffemodel
loads by name (tests/test_geng16_net.py compares the two layer by layer). The
ImageNet heads (dropouts, loss*/classifier, losses, accuracies) are left out:
Geng16 puts its own heads on the three features this returns.
"""
from caffe import layers as L, params as P

from common.config import GENG16_CROP

FEATURE_DIM = 1024       # pool5/7x7_s1 and loss{1,2}/fc are 1024-D (Geng16 §4.1)
AUX_DROPOUT = 0.7        # loss1/drop_fc, loss2/drop_fc in bvlc_googlenet
MAIN_DROPOUT = 0.4       # pool5/drop_7x7_s1 in bvlc_googlenet
AUX_LOSS_WEIGHT = 0.3    # loss1/loss, loss2/loss weight in bvlc_googlenet

# (1x1, 3x3_reduce, 3x3, 5x5_reduce, 5x5, pool_proj) per module, Szegedy et al. Table 1.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}

LRN = dict(local_size=5, alpha=1e-4, beta=0.75)
PARAMS = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
BIAS = 0.2  # bias_filler value of every conv and loss*/fc layer


def conv(n, name, bottom, nout, ks, relu, stride=1, pad=0):
    """Convolution (xavier, bias 0.2) + in-place ReLU named `relu`."""
    kw = {}
    if stride != 1:
        kw["stride"] = stride
    if pad:
        kw["pad"] = pad
    n[name] = L.Convolution(bottom, num_output=nout, kernel_size=ks, param=PARAMS,
                            weight_filler=dict(type="xavier"),
                            bias_filler=dict(type="constant", value=BIAS), **kw)
    n[relu] = L.ReLU(n[name], in_place=True)
    return n[name]


def max_pool(n, name, bottom, ks=3, stride=2, pad=0):
    kw = dict(pad=pad) if pad else {}
    n[name] = L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=ks, stride=stride, **kw)
    return n[name]


def inception(n, module, bottom):
    """One inception module `inception_<module>/…`; returns its output concat."""
    c1, r3, c3, r5, c5, pp = INCEPTION[module]
    p = "inception_%s/" % module
    b1 = conv(n, p + "1x1", bottom, c1, 1, p + "relu_1x1")
    r = conv(n, p + "3x3_reduce", bottom, r3, 1, p + "relu_3x3_reduce")
    b3 = conv(n, p + "3x3", r, c3, 3, p + "relu_3x3", pad=1)
    r = conv(n, p + "5x5_reduce", bottom, r5, 1, p + "relu_5x5_reduce")
    b5 = conv(n, p + "5x5", r, c5, 5, p + "relu_5x5", pad=2)
    pool = max_pool(n, p + "pool", bottom, 3, 1, 1)
    bp = conv(n, p + "pool_proj", pool, pp, 1, p + "relu_pool_proj")
    n[p + "output"] = L.Concat(b1, b3, b5, bp)
    return n[p + "output"]


def aux_branch(n, k, bottom):
    """loss<k>/ave_pool 5×5 s3 → loss<k>/conv 1×1 128 → loss<k>/fc 1024 (+ReLU).
    Returns loss<k>/fc (before GoogLeNet's dropout, which the heads add)."""
    p = "loss%d/" % k
    n[p + "ave_pool"] = L.Pooling(bottom, pool=P.Pooling.AVE, kernel_size=5, stride=3)
    c = conv(n, p + "conv", n[p + "ave_pool"], 128, 1, p + "relu_conv")
    n[p + "fc"] = L.InnerProduct(c, num_output=FEATURE_DIM, param=PARAMS,
                                 weight_filler=dict(type="xavier"),
                                 bias_filler=dict(type="constant", value=BIAS))
    n[p + "relu_fc"] = L.ReLU(n[p + "fc"], in_place=True)
    return n[p + "fc"]


def _pooled(side):
    """Caffe's pooling output side for 3×3 stride 2 (rounds up)."""
    return -(-(side - 3) // 2) + 1


def final_side(size=GENG16_CROP):
    """Spatial side of inception_5b/output for a size × size input (7 at 224),
    i.e. the kernel of pool5/7x7_s1, which is a global average there."""
    side = (size + 2 * 3 - 7) // 2 + 1          # conv1/7x7_s2
    for _ in range(4):                          # pool1 … pool4, 3×3 stride 2
        side = _pooled(side)
    return side


def googlenet(n, data, size=GENG16_CROP, aux=True):
    """The bvlc_googlenet body on `data` (N × 3 × size × size).

    Returns (main, aux1, aux2): pool5/7x7_s1 (N × 1024 × 1 × 1) and the
    ReLU'd loss1/fc, loss2/fc (N × 1024); with aux=False (deploy) the two
    auxiliary branches are not built and None stands for them. loss{1,2}/fc
    weights are 1024 × 2048 only at size 224 (their input is 128 × 4 × 4
    there); the main path's parameter shapes do not depend on the size."""
    x = conv(n, "conv1/7x7_s2", data, 64, 7, "conv1/relu_7x7", stride=2, pad=3)
    x = max_pool(n, "pool1/3x3_s2", x)
    n["pool1/norm1"] = L.LRN(x, **LRN)
    x = conv(n, "conv2/3x3_reduce", n["pool1/norm1"], 64, 1, "conv2/relu_3x3_reduce")
    x = conv(n, "conv2/3x3", x, 192, 3, "conv2/relu_3x3", pad=1)
    n["conv2/norm2"] = L.LRN(x, **LRN)
    x = max_pool(n, "pool2/3x3_s2", n["conv2/norm2"])
    x = inception(n, "3a", x)
    x = inception(n, "3b", x)
    x = max_pool(n, "pool3/3x3_s2", x)
    x = inception(n, "4a", x)
    aux1 = aux_branch(n, 1, x) if aux else None
    x = inception(n, "4b", x)
    x = inception(n, "4c", x)
    x = inception(n, "4d", x)
    aux2 = aux_branch(n, 2, x) if aux else None
    x = inception(n, "4e", x)
    x = max_pool(n, "pool4/3x3_s2", x)
    x = inception(n, "5a", x)
    x = inception(n, "5b", x)
    side = final_side(size)
    if side < 1:
        raise ValueError("googlenet: input side %d is too small" % size)
    n["pool5/7x7_s1"] = L.Pooling(x, pool=P.Pooling.AVE, kernel_size=side, stride=1)
    return n["pool5/7x7_s1"], aux1, aux2
