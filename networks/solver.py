"""Solver definitions that mirror the papers' training schedules, written as
prototxt the stock `caffe train` binary runs as it is.

An iteration scale factor shrinks a schedule for short runs while keeping its
shape: max_iter, stepsize and the snapshot interval are scaled together.
"""
from google.protobuf import text_format

from caffe.proto import caffe_pb2

# Geng16 §5.2 "Training setting": lr 0.001, ×0.1 every 40K iterations.
GENG16_BASE_LR = 0.001
GENG16_GAMMA = 0.1
GENG16_STEPSIZE = 40000
# ImageNet → large set (CUHK03, Market): step 1 20K, step 2 150K (§5.2).
GENG16_LARGE_STEP1_ITERS = 20000
GENG16_LARGE_STEP2_ITERS = 150000
# Large → small set (VIPeR, PRID, CUHK01): 20K + 20K (§5.2).
GENG16_SMALL_STEP1_ITERS = 20000
GENG16_SMALL_STEP2_ITERS = 20000
# Not given by Geng16: BVLC GoogLeNet's own solver values
# (models/bvlc_googlenet/quick_solver.prototxt).
GENG16_MOMENTUM = 0.9
GENG16_WEIGHT_DECAY = 0.0002

# MTDnet "Implementation details" and the authors' solver: lr 0.001 fixed,
# momentum 0.9, weight decay 5e-4; 200K iterations on CUHK03, 20K on the
# small sets, fine-tuned from the CUHK03 model.
MTDNET_BASE_LR = 0.001
MTDNET_MOMENTUM = 0.9
MTDNET_WEIGHT_DECAY = 0.0005
MTDNET_CUHK03_ITERS = 200000
MTDNET_SMALL_ITERS = 20000
# PRID2011 fine-tuning's base_lr, by reading: the paper's 0.001 throughout
# (default), or the authors' solver files — Nets/MTDnet/solver_PRID.prototxt
# has 0.0001, their MTDnet-rnk one 0.001 as every other set.
PRID_LRS = ("paper", "authors")
MTDNET_PRID_AUTHORS_LR = 0.0001

DISPLAY = 20
SNAPSHOT = 10000


def scaled(iters, scale):
    """An iteration count under the scale factor (at least 1)."""
    return max(1, int(round(iters * scale)))


def solver_param(net, base_lr, max_iter, lr_policy="fixed", stepsize=None, gamma=None,
                 momentum=0.9, weight_decay=0.0005, scale=1.0, display=DISPLAY,
                 snapshot=SNAPSHOT, snapshot_prefix="snapshot", random_seed=None, gpu=False):
    """A caffe_pb2.SolverParameter; `scale` multiplies every iteration count."""
    if lr_policy == "step" and (stepsize is None or gamma is None):
        raise ValueError("solver: lr_policy 'step' needs stepsize and gamma")
    p = caffe_pb2.SolverParameter()
    p.net = net
    p.base_lr = base_lr
    p.lr_policy = lr_policy
    if lr_policy == "step":
        p.gamma = gamma
        p.stepsize = scaled(stepsize, scale)
    p.max_iter = scaled(max_iter, scale)
    p.momentum = momentum
    p.weight_decay = weight_decay
    p.display = min(display, p.max_iter)
    p.snapshot = scaled(snapshot, scale)
    p.snapshot_prefix = snapshot_prefix
    p.solver_mode = caffe_pb2.SolverParameter.GPU if gpu else caffe_pb2.SolverParameter.CPU
    if random_seed is not None:
        p.random_seed = random_seed
    return p


def geng16_solver(net, max_iter, scale=1.0, base_lr=GENG16_BASE_LR, **kw):
    """Geng16's schedule (step policy) for one fine-tuning step."""
    return solver_param(net, base_lr, max_iter, "step", GENG16_STEPSIZE, GENG16_GAMMA,
                        GENG16_MOMENTUM, GENG16_WEIGHT_DECAY, scale, **kw)


def mtdnet_solver(net, max_iter=MTDNET_CUHK03_ITERS, scale=1.0, base_lr=MTDNET_BASE_LR, **kw):
    """MTDnet's schedule (fixed policy)."""
    return solver_param(net, base_lr, max_iter, "fixed", momentum=MTDNET_MOMENTUM,
                        weight_decay=MTDNET_WEIGHT_DECAY, scale=scale, **kw)


def mtdnet_prid_lr(reading, net):
    """base_lr of MTDnet's PRID2011 stage for train net `net` (a key of
    netgen.mtdnet.TRAIN_NETS) under `reading` (PRID_LRS)."""
    if reading not in PRID_LRS:
        raise ValueError("solver: PRID lr reading must be one of %s, got %r"
                         % (", ".join(PRID_LRS), reading))
    if reading == "authors" and net != "mtdnet_rnk":
        return MTDNET_PRID_AUTHORS_LR
    return MTDNET_BASE_LR


def to_text(param):
    """Prototxt text of a SolverParameter."""
    return text_format.MessageToString(param)
