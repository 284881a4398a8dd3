"""Data-parallel training on several GPUs through pycaffe (docs/cluster.md),
used by `python -m tools.train --gpus 0,1,…` (training/stage.py).

Stock `caffe train --gpu 0,1` refuses Python layers in TRAIN, so a stage
runs one spawned process per GPU, as BVLC's python/train.py does: each sets
its device, `set_solver_count`, `set_solver_rank` and `set_multiprocess(True)`,
builds the solver and joins an NCCL session (`caffe.NCCL`) that broadcasts
rank 0's weights and all-reduces the gradients every iteration. Each GPU
takes the prototxt's batch, so an iteration sees batch × GPUs images; the
identity-sampled data layer gives rank r of n the identities [r::n]
(layers/identity_sampled_data.py).

All ranks restore the same .solverstate and step the same chunks
(training/stage.py's schedule depends on the iteration alone). Rank 0 alone
shows progress, snapshots, records state.json and writes final.caffemodel;
at each chunk boundary it also decides for all whether to stop (Ctrl-C, or
SIGTERM to any of the processes), so no rank is left waiting in an
all-reduce that the others never join.

Parsing and validating a --gpus list, the data-sharding check, the stop
agreement and the supervision of the processes need no GPU and are tested
on the CPU (tests/test_multi_gpu.py).
"""
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal

import numpy as np

from common import caffe_env
from common.params import parse_param_str
import caffe
from caffe.proto import caffe_pb2
from data_prep.lmdb_builder import read_index
from layers import identity_sampled_data as isd

# Python data layers that draw a disjoint part of the data on each rank.
SHARDED_DATA_LAYERS = {("layers.identity_sampled_data", isd.NAME)}
STOPPED = 130  # exit status of a command (tools.train, tools.reproduce, …) stopped by a signal
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Stopped(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after its snapshot was saved
    and said so: the command ends with `status` (STOPPED) and no further
    line. A KeyboardInterrupt, so code that does not expect it still ends
    as interrupted (common.cli: exit 130)."""

    def __init__(self, status=STOPPED):
        super().__init__(status)
        self.status = status


class Refused(RuntimeError):
    """A run this Caffe build, machine or net cannot do, found before any
    training starts."""


def validate_gpus(gpus, where):
    """gpus as a list of distinct non-negative ints; ValueError naming `where`."""
    gpus = list(gpus)
    if not gpus:
        raise ValueError("%s: no device ids" % where)
    for i, gpu in enumerate(gpus):
        if isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0:
            raise ValueError("%s: %r is not a device id (an integer >= 0)" % (where, gpu))
        if gpu in gpus[:i]:
            raise ValueError("%s: device %d is listed twice" % (where, gpu))
    return gpus


def parse_gpus(text):
    """The device ids of a --gpus value such as "0,1"."""
    where = "--gpus %s" % text
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError("%s: expected device ids separated by commas, such as 0,1" % where) from None
    return validate_gpus(ids, where)


def gpus_text(gpus):
    return ",".join(str(g) for g in gpus)


def check_devices(gpus, device_count):
    """Refuse ids beyond the `device_count` devices the driver reports."""
    missing = [g for g in gpus if g >= device_count]
    if missing:
        raise Refused("--gpus %s: no GPU %d; the CUDA driver reports %d GPU(s)"
                      % (gpus_text(gpus), missing[0], device_count))


def check_build(gpus):
    """Refuse what this Caffe or this machine cannot run on `gpus`."""
    where = "--gpus %s" % gpus_text(gpus)
    if not caffe_env.built_with_cuda():
        raise Refused("%s: this Caffe (%s) is a CPU_ONLY build; build the CUDA variant with "
                      "caffe_build/setup.sh --cuda" % (where, caffe_env.caffe_prefix()))
    # Without USE_NCCL pycaffe still defines caffe.NCCL, as an empty class.
    if not hasattr(getattr(caffe, "NCCL", None), "new_uid"):
        raise Refused("%s: this Caffe (%s) was built without NCCL; rebuild it where NCCL is "
                      "installed (the nvidia/cuda devel image has it)" % (where, caffe_env.caffe_prefix()))
    check_devices(gpus, caffe_env.cuda_device_count())


def check_shards(labels, count, k, where):
    """The identities of each of `count` ranks (isd.shard_identities):
    checked to be disjoint, to cover every labelled identity, and to hold at
    least the k distinct identities of a batch each."""
    shards = [isd.shard_identities(labels, rank, count) for rank in range(count)]
    ids = np.unique(np.asarray(labels))
    ids = ids[ids >= 0]
    joined = np.sort(np.concatenate(shards))
    if not np.array_equal(joined, ids):
        raise Refused("%s: the identity shards of %d ranks are not a partition of the %d identities"
                      % (where, count, len(ids)))
    for rank, shard in enumerate(shards):
        if len(shard) < k:
            raise Refused("%s: %d identities leave rank %d of %d only %d, fewer than k=%d"
                          % (where, len(ids), rank, count, len(shard), k))
    return shards


def in_train(layer):
    """Whether Caffe's NetStateRules put the layer in the TRAIN net, by phase
    (levels and stages are not used by this project's nets)."""
    if layer.include:
        return any(not r.HasField("phase") or r.phase == caffe_pb2.TRAIN for r in layer.include)
    return not any(r.HasField("phase") and r.phase == caffe_pb2.TRAIN for r in layer.exclude)


def train_net(param):
    """(NetParameter, name for messages) of a solver's train net."""
    for field in ("train_net_param", "net_param"):
        if param.HasField(field):
            return getattr(param, field), "solver %s" % field
    path = param.train_net or param.net
    return caffe_env.read_prototxt(path, caffe_pb2.NetParameter(), "net file of the solver"), path


def check_shardable(param, count):
    """Refuse a train net whose Python data layers would feed each of `count`
    GPUs the same samples (Caffe's own data layers shard by solver rank)."""
    net, where = train_net(param)
    for layer in net.layer:
        if layer.type != "Python" or layer.bottom or not in_train(layer):
            continue
        kind = (layer.python_param.module, layer.python_param.layer)
        name = "%s: layer '%s' (%s.%s)" % (where, layer.name, kind[0], kind[1])
        if kind not in SHARDED_DATA_LAYERS:
            raise Refused("%s does not shard its data by solver rank, so %d GPUs would train on "
                          "the same samples" % (name, count))
        opts = parse_param_str(layer.python_param.param_str, isd.PARAMS, name)
        if opts["rank"] is not None or opts["count"] is not None:
            raise Refused("%s fixes rank/count in its param_str; drop them for --gpus" % name)
        check_shards(read_index(opts["source"])["label"], count, opts["k"], name)


class Team:
    """One rank's part in a multi-GPU run: its place, its NCCL session, and
    the stop flag that rank 0 turns into a decision shared by all ranks."""

    def __init__(self, rank, gpus, uid, stop, decision, barrier, stopped=None):
        self.rank, self.gpus, self.count, self.device = rank, list(gpus), len(gpus), gpus[rank]
        self.root = rank == 0  # Caffe's root solver: the only one that logs and snapshots
        self.uid = uid
        self.stop, self.decision, self.barrier = stop, decision, barrier
        self.stopped = stopped  # set by a rank that ended in Stopped (launch's status)
        self.nccl = None

    def setup_caffe(self):
        """Caffe's per-process multi-GPU setup, before the solver is built
        (BVLC python/train.py)."""
        caffe.set_device(self.device)
        caffe.set_mode_gpu()
        caffe.set_solver_count(self.count)
        caffe.set_solver_rank(self.rank)
        caffe.set_multiprocess(True)

    def attach(self, solver):
        """Join the NCCL session: rank 0's weights to every rank, then the
        gradients all-reduced each iteration."""
        self.nccl = caffe.NCCL(solver, self.uid)  # kept: Caffe holds a plain pointer to it
        self.nccl.bcast()
        solver.add_callback(self.nccl)
        if solver.param.layer_wise_reduce:
            solver.net.after_backward(self.nccl)

    def should_stop(self):
        """At a chunk boundary: whether all ranks stop now, as rank 0 read the
        stop flag (a signal may reach the ranks at different moments)."""
        if self.root:
            self.decision.value = self.stop.value
        self.barrier.wait()
        stop = bool(self.decision.value)
        self.barrier.wait()  # rank 0 rewrites the decision only after all have read it
        return stop


def make_teams(gpus, uid, ctx):
    """The plan: one Team per listed device, its rank its place in the list,
    all sharing one stop flag, decision, barrier and stopped flag made in
    `ctx`."""
    stop, decision, barrier = ctx.RawValue("b", 0), ctx.RawValue("b", 0), ctx.Barrier(len(gpus))
    stopped = ctx.RawValue("b", 0)
    return [Team(rank, gpus, uid, stop, decision, barrier, stopped) for rank in range(len(gpus))]


def _request_stop(stop):
    def handler(signum, frame):
        stop.value = 1  # lock-free: a lock could already be held by the interrupted code
    return handler


def _child(target, team, args, parent):
    """A rank's process: signals only request the agreed stop, then
    target(team, *args); a rank that ends in Stopped says so in the team's
    stopped flag (its process then exits 0)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _request_stop(team.stop))
    # a parent killed outright must not leave ranks training into its run dir
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        team.stop.value = 1
    try:
        target(team, *args)
    except Stopped:
        team.stopped.value = 1


def launch(target, args, gpus, uid, log):
    """Run target(team, *args) in one spawned process per GPU and wait for
    all. Returns 0, or STOPPED when a signal stopped them together (a rank
    raised Stopped, or exited with status STOPPED); raises
    RuntimeError when a rank fails, after killing the others (they would
    wait for it forever)."""
    ctx = multiprocessing.get_context("spawn")  # CUDA does not survive fork
    teams = make_teams(gpus, uid, ctx)
    procs = [ctx.Process(target=_child, name="rank %d (GPU %d)" % (t.rank, t.device),
                         args=(target, t, args, os.getpid())) for t in teams]
    old = {sig: signal.signal(sig, _request_stop(teams[0].stop))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        running = list(procs)
        while running:
            multiprocessing.connection.wait([p.sentinel for p in running])
            for p in [p for p in running if p.exitcode is not None]:
                running.remove(p)
                if p.exitcode not in (0, STOPPED):
                    raise RuntimeError("%s failed with exit status %d; its error is above or in %s"
                                       % (p.name, p.exitcode, log))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            if p.pid is not None:
                p.join()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    stopped = teams[0].stopped.value or any(p.exitcode == STOPPED for p in procs)
    return STOPPED if stopped else 0
