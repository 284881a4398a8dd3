"""One training stage in-process through pycaffe's solver, resumably
(`python -m tools.train` is its command):

- Caffe logs natively (glog INFO to `<run-dir>/train.log`), so Caffe's own
  `tools/extra/parse_log.py` reads it; the terminal shows a progress bar
  (iteration, losses, learning rate, images/s, ETA).
- Snapshots every `--snapshot-every` iterations and on Ctrl-C / SIGTERM; each
  is recorded in `<run-dir>/state.json` (written atomically) only once both
  files are complete. A rerun resumes from the last recorded `.solverstate`:
  no completed iteration is lost to an interruption that can be caught, and
  at most one interval to a SIGKILL.
- On completion the weights are `<run-dir>/final.caffemodel` (atomic) and a
  rerun does nothing — when it is the same run: the run directory's marker
  (common/atomic.py) records what made the stage (the net and solver text,
  the initial weights' and the LMDB indexes' SHA-1, the number of GPU
  processes), and a rerun or resume that differs is refused, naming the
  first difference, unless asked to `--recompute` (which starts afresh).
- One run at a time per run directory (a lock file held for the run; a
  second run is refused, naming the holder's PID). The directory is
  relocatable: state.json names its snapshots relative to it and a resume
  points the .solverstate at the snapshot beside it. Snapshots that no
  record names (a SIGKILL during one) are removed by the next run.
- Refused before the first iteration, in one line: initial weights that are
  no model, fit no layer or have another shape (training/surgery.py); labels of
  an LMDB that reach a softmax classifier's num_output; max_iter < 1 or
  --snapshot-every < 0. A non-finite loss stops the run, naming the
  iteration and the output, and leaves the last good snapshot recorded.
- `run_in_child` (what the command calls) runs the stage in a child
  process: when Caffe aborts it (a CHECK failure, a full disk) it raises
  cli.Failure `Caffe aborted: <its F line in train.log> (<log>)`, the
  command's one error line. `train_stage` runs in-process.
- An interruption (Ctrl-C, SIGTERM) snapshots, says so, and raises
  multi_gpu.Stopped (a KeyboardInterrupt): the command ends with status 130.
- Python layers that define `resume_at(iteration)` are told the iteration
  after a restore, so seeded data layers continue where they stopped.
- The CPU by default; `--gpu N` trains on GPU N; `--gpus 0,1,…` trains on
  several with Caffe's NCCL data parallelism, one process per GPU, each
  taking the prototxt's batch (training/multi_gpu.py); an interruption stops
  them together within `display` iterations. A run the build or
  machine cannot do (no CUDA, no NCCL, no such device, a data layer that
  does not shard by solver rank) is refused in one line before it starts.
"""
import os

from common import caffe_env
from common.atomic import write_marker
from common.layout import FINAL, LOG
from training import multi_gpu, surgery
from training.loop import rank_main, train
from training.multi_gpu import Stopped
from training.run_dir import (KIND, check_record, clean_unrecorded, load_state, locked,
                              point_at_own_snapshot)
from training.solver_setup import check_labels, stage_record, stage_solver, write_staged
import caffe


def train_stage(solver_path, run_dir, weights=None, snapshot_every=1000, gpu=None, seed=None,
                progress=True, gpus=None, recompute=False):
    """Run (or resume, or skip when done) one stage on the CPU, on GPU `gpu`,
    or data-parallel on the GPUs `gpus`. Returns the final .caffemodel path.
    A stage made from other inputs is refused (common.atomic.Stale) unless
    `recompute`, which trains it afresh. Raises multi_gpu.Refused when this
    build or machine cannot run it, and Stopped when an interruption stopped
    it (its snapshot saved)."""
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 0:
        raise ValueError("--snapshot-every %r: must be an integer >= 0 (0: snapshots only on "
                         "interruption and at the end)" % (snapshot_every,))
    if gpus is not None:
        if gpu is not None:
            raise ValueError("train_stage: give gpu or gpus, not both")
        gpus = multi_gpu.validate_gpus(gpus, "gpus=%r" % (gpus,))
        if len(gpus) == 1:
            gpu, gpus = gpus[0], None
    if weights and not os.path.isfile(weights):
        raise FileNotFoundError("weights file not found: %s" % weights)
    param = stage_solver(solver_path, run_dir, seed)
    os.makedirs(run_dir, exist_ok=True)
    with locked(run_dir):
        record, net, where = stage_record(param, weights, len(gpus) if gpus else 1)
        final = os.path.join(run_dir, FINAL)
        done = check_record(run_dir, record, recompute)
        if done and os.path.isfile(final):
            return final
        if gpus:
            multi_gpu.check_build(gpus)
        else:
            try:
                caffe_env.set_mode(gpu)
            except RuntimeError as err:
                raise multi_gpu.Refused(str(err)) from None
        blobs = surgery.read_blobs(weights) if weights else None  # junk refused before Caffe runs
        check_labels(net, where)
        if gpus:
            multi_gpu.check_shardable(param, len(gpus))
        if not done:
            write_marker(run_dir, KIND, record)
        staged = write_staged(run_dir, param)
        state = load_state(run_dir)
        clean_unrecorded(run_dir, state)
        if state:
            point_at_own_snapshot(state)
        resume = state["solverstate"] if state else None
        if not gpus:
            return train(staged, param, run_dir, weights, resume, snapshot_every, progress,
                          blobs=blobs)
        status = multi_gpu.launch(rank_main, (staged, run_dir, weights, resume, snapshot_every,
                                               progress),  # each rank reads the weights itself
                                  gpus, caffe.NCCL.new_uid(), os.path.join(run_dir, LOG))
        if status:
            raise Stopped(status)
        return final
