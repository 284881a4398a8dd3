"""The GPU check (tools/gpu_check.sh, docs/gpu.md): the suite's GPU tests,
then the benchmarks at the papers' sizes, each beside the same net with an
Input layer in place of our data layer (Caffe's own layers fed one of its
batches), the share of each Python layer in an iteration, and the hours of
each paper schedule projected from the rates.

    python -m bench.gpu_check OUT [--cpu] [--short] [--budget SECONDS]

Writes OUT/gpu_check.json, OUT/gpu_check.md and OUT/tests.log. --cpu puts the
CPU in the GPU's place (the rehearsal on a machine without one); --short
runs small sizes (the suite's test of the rehearsal). Once --budget seconds
have passed, the benchmarks not yet begun are skipped, and said so.
"""
import argparse
import ctypes
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import caffe_env, cli
import caffe
from bench import bench_training
from bench.bench_geng16_layers import layer_seconds
from common.config import MTDNET_INPUT
from data_prep import market1501, synthetic
from data_prep.lmdb_builder import build_lmdb
from evaluation import cir
from networks import geng16, mtdnet
from networks import solver as schedules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The suite's tests of GPU mode, with the CPU in the GPU's place under --cpu.
GPU_TESTS = ("tests/test_gpu.py", "tests/test_multi_gpu.py",
             "tests/test_foundation.py::test_gpu_forward_backward_matches_cpu",
             "tests/test_foundation.py::test_gpu_mode_without_gpu_is_a_python_error")
SHORT_TESTS = ("tests/test_gpu.py::test_missing_device_is_refused",
               "tests/test_foundation.py::test_gpu_mode_without_gpu_is_a_python_error")
M = 2
# The papers' sizes (Geng16 §4.1: K = 32 identities × M = 2 images; MTDnet:
# 128 triplets a batch; CIR: CUHK03's 100 test identities, probes × gallery)
# and the short ones. naive: the probes the one-pair-per-forward reference scores.
SIZES = {"paper": dict(googlenet=32, dgdnet=32, mtdnet=mtdnet.BATCH, cir=(100, 100), naive=1, rounds=3),
         "short": dict(googlenet=2, dgdnet=4, mtdnet=2, cir=(4, 4), naive=1, rounds=1)}
# LMDB image sizes: GoogLeNet crops 224 of 256; DGDNet 144 × 56 of 160 × 64;
# MTDnet stretches any image to 227.
LMDB_HW = {"googlenet": (256, 256), "dgdnet": (160, 64)}
NUM_IDS = 80  # synthetic identities: 40 to train, enough for K = 32
# Schedules (networks/solver.py): iterations of each paper's training.
SCHEDULES = (
    ("Geng16, ImageNet -> Market/CUHK03 (step 1 20K + step 2 150K)", "googlenet",
     schedules.GENG16_LARGE_STEP1_ITERS + schedules.GENG16_LARGE_STEP2_ITERS),
    ("Geng16, large -> VIPeR/PRID/CUHK01 (20K + 20K)", "googlenet",
     schedules.GENG16_SMALL_STEP1_ITERS + schedules.GENG16_SMALL_STEP2_ITERS),
    ("Geng16 on DGDNet, ImageNet -> large (20K + 150K)", "dgdnet",
     schedules.GENG16_LARGE_STEP1_ITERS + schedules.GENG16_LARGE_STEP2_ITERS),
    ("MTDnet, CUHK03 (200K)", "mtdnet", schedules.MTDNET_CUHK03_ITERS),
    ("MTDnet, small sets (20K)", "mtdnet", schedules.MTDNET_SMALL_ITERS),
)


class Device:
    """The device under test: GPU 0, or the CPU in its place (--cpu)."""

    def __init__(self, cpu):
        self.gpu = None if cpu else 0
        self._cudart = None if cpu else ctypes.CDLL("libcudart.so.13")

    def use(self):
        caffe_env.set_mode(self.gpu)

    def sync(self):
        """Wait for the work queued on the GPU (Caffe's kernels return early)."""
        if self._cudart is not None:
            err = self._cudart.cudaDeviceSynchronize()
            if err:
                raise cli.Failure("cudaDeviceSynchronize returned CUDA error %d" % err)

    def describe(self):
        if self.gpu is None:
            model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                          if l.startswith("model name")), platform.processor())
            return "CPU in the GPU's place (--cpu): %s, %d cores" % (model, os.cpu_count())
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                  "--format=csv,noheader", "-i", "0"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        return "GPU 0: %s" % (out or "(nvidia-smi not available)")


# ---- tests ---------------------------------------------------------------

def run_tests(out, device, short):
    """The GPU tests in a child pytest; their counts, from its summary line."""
    env = dict(os.environ)
    if device.gpu is None:
        env["REID_TEST_DEVICE"] = "cpu"
    log = os.path.join(out, "tests.log")
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
                               *(SHORT_TESTS if short else GPU_TESTS)],
                              cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    summary = open(log).read().strip().splitlines()[-1]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", summary)}
    return {"passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
            "errors": counts.get("error", 0) + counts.get("errors", 0), "skipped": counts.get("skipped", 0),
            "exit_status": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
            "summary": summary, "log": "tests.log"}


# ---- benchmarks ------------------------------------------------------------

def python_shares(net, step, device):
    """Seconds of each Python layer class (forward + backward, summed over its
    layers) in one iteration, and its share of the whole `step` seconds."""
    spent = layer_seconds(net, rounds=1, sync=device.sync)
    by_class = {}
    for t, layer in zip(spent, net.layers):
        if layer.type == "Python":
            name = type(layer).__name__
            by_class[name] = by_class.get(name, 0.0) + float(t)
    return {name: {"seconds": round(t, 5), "share": round(t / step, 4)} for name, t in by_class.items()}


def _training(ours, plain, batch_images, rounds, device):
    """Our solver against the Input-fed one given our data layer's batch."""
    ours.step(1)
    device.sync()
    for blob in plain.net.inputs:
        plain.net.blobs[blob].data[...] = ours.net.blobs[blob].data
    plain.step(1)
    step, plain_step = bench_training._best_steps(ours, plain, rounds, device.sync)
    shares = python_shares(ours.net, step, device)
    close = getattr(ours.net.layers[0], "close", None)  # the prefetching data layer's thread
    if close:
        close()
    return {"img_s": round(batch_images / step, 2), "baseline_img_s": round(batch_images / plain_step, 2),
            "ratio": round(plain_step / step, 3), "s_per_iter": round(step, 4),
            "batch_images": batch_images, "python_layers": shares}


def bench_geng16(tmp, split, num_ids, base, k, rounds, device):
    h, w = LMDB_HW[base]
    source = build_lmdb(split, os.path.join(tmp, "%s.lmdb" % base), h, w, verbose=False)
    device.use()
    ours = bench_training._solver(tmp, base, geng16.geng16(base=base, num_ids=num_ids, source=source,
                                                           k=k, m=M))
    plain = bench_training._solver(tmp, base + "_input",
                                   geng16.geng16(base=base, num_ids=num_ids, data="input", k=k, m=M))
    return dict(_training(ours, plain, k * M, rounds, device), k=k, m=M)


def _mtdnet_solver(tmp, name, spec):
    net_path = os.path.join(tmp, name + "_train.prototxt")
    with open(net_path, "w") as f:
        f.write(mtdnet.net_text(spec, name))
    solver_path = os.path.join(tmp, name + "_solver.prototxt")
    with open(solver_path, "w") as f:
        f.write(mtdnet.solver(net_path, 100000, snapshot_prefix=os.path.join(tmp, name)))
    return caffe.SGDSolver(solver_path)


def bench_mtdnet(tmp, split, batch, rounds, device):
    source = build_lmdb(split, os.path.join(tmp, "mtdnet.lmdb"), *LMDB_HW["dgdnet"], verbose=False)
    device.use()
    ours = _mtdnet_solver(tmp, "mtdnet", mtdnet.mtdnet(data="lmdb", batch=batch, source=source))
    plain = _mtdnet_solver(tmp, "mtdnet_input", mtdnet.mtdnet(data="input", batch=batch))
    return dict(_training(ours, plain, 3 * batch, rounds, device), triplets=batch)


def bench_cir(probes, gallery, naive_probes, device):
    """Batched CIR scoring (evaluation/cir.py, 1 pass) against one pair per
    forward of the whole pair net, random fillers, random images."""
    device.use()
    trunk, head, pair = cir.load_nets(None, MTDNET_INPUT)
    rng = np.random.RandomState(0)
    shape = (3, MTDNET_INPUT, MTDNET_INPUT)
    probe = rng.uniform(0, 255, (probes,) + shape).astype(np.float32)
    gallery_x = rng.uniform(0, 255, (gallery,) + shape).astype(np.float32)
    cir.cir_scores(trunk, head, probe[:1], gallery_x[:2], passes=1)  # warm up
    start = time.perf_counter()
    cir.cir_scores(trunk, head, probe, gallery_x, passes=1)
    fast = probes * gallery / (time.perf_counter() - start)
    start = time.perf_counter()
    cir.naive_pair_scores(pair, probe[:naive_probes], gallery_x)
    naive = naive_probes * gallery / (time.perf_counter() - start)
    return {"pairs_s": round(fast, 1), "baseline_pairs_s": round(naive, 1), "ratio": round(fast / naive, 2),
            "probes": probes, "gallery": gallery, "baseline": "one pair per forward, %d probe(s)" % naive_probes}


def projections(bench):
    """Hours of each paper schedule at the measured training rates (every
    iteration at the full-training rate: step 1, which learns only the new
    layers, is faster, so its hours are an upper bound)."""
    rows = []
    for what, key, iters in SCHEDULES:
        b = bench.get(key)
        if not b or "img_s" not in b:
            continue
        rows.append({"schedule": what, "net": key, "iterations": iters,
                     "hours": round(iters * b["batch_images"] / b["img_s"] / 3600, 2)})
    c = bench.get("cir")
    if c and "pairs_s" in c:
        rows.append({"schedule": "MTDnet CIR test, one CUHK03 trial (100 x 100 pairs, 1 pass)",
                     "net": "cir", "iterations": None, "hours": round(100 * 100 / c["pairs_s"] / 3600, 4)})
    return rows


# ---- report ----------------------------------------------------------------

def markdown(doc):
    lines = ["# GPU check", "", "- device: %s" % doc["device"], "- sizes: %s; %.0f s in all" % (doc["sizes"], doc["seconds"]),
             "- tests: %(passed)d passed, %(failed)d failed, %(errors)d errors, %(skipped)d skipped "
             "(%(seconds).0f s; %(log)s)" % doc["tests"], "",
             "| benchmark | ours | Input-fed baseline | ratio | s/iter |", "| --- | ---: | ---: | ---: | ---: |"]
    for key, b in doc["benchmarks"].items():
        if "error" in b or "skipped" in b:
            lines.append("| %s | %s | | | |" % (key, b.get("error") or b["skipped"]))
        elif key == "cir":
            lines.append("| CIR %dx%d (pairs/s) | %.1f | %.1f (%s) | %.2f | |"
                         % (b["probes"], b["gallery"], b["pairs_s"], b["baseline_pairs_s"], b["baseline"], b["ratio"]))
        else:
            lines.append("| %s, %d images/iter (img/s) | %.2f | %.2f | %.3f | %.4f |"
                         % (key, b["batch_images"], b["img_s"], b["baseline_img_s"], b["ratio"], b["s_per_iter"]))
    lines += ["", "| Python layer in an iteration | net | s | share |", "| --- | --- | ---: | ---: |"]
    for key, b in doc["benchmarks"].items():
        for name, v in b.get("python_layers", {}).items():
            lines.append("| %s | %s | %.5f | %.1f %% |" % (name, key, v["seconds"], 100 * v["share"]))
    lines += ["", "| paper schedule | net | iterations | hours |", "| --- | --- | ---: | ---: |"]
    for p in doc["projections"]:
        iters = format(p["iterations"], ",") if p["iterations"] else "-"
        lines.append("| %s | %s | %s | %.2f |" % (p["schedule"], p["net"], iters, p["hours"]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m bench.gpu_check", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\nWrites OUT/gpu_check.json, "
                    "OUT/gpu_check.md and OUT/tests.log.",
        epilog="examples:\n"
               "  bash tools/gpu_check.sh gpu-kit out          # on the GPU machine: the kit, then this\n"
               "  python -m bench.gpu_check out --cpu --short  # a short rehearsal on the CPU")
    ap.add_argument("out", help="folder for gpu_check.json, gpu_check.md and tests.log")
    ap.add_argument("--cpu", action="store_true", help="the CPU in the GPU's place (rehearsal)")
    ap.add_argument("--short", action="store_true", help="small sizes")
    ap.add_argument("--budget", type=cli.positive_float, default=420.0,
                    help="seconds after which benchmarks not yet begun are skipped (default 420)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise FileExistsError("%s is an existing file, not a folder for the results" % args.out)
    os.makedirs(args.out, exist_ok=True)
    device = Device(args.cpu)
    if device.gpu is not None:
        caffe_env.set_mode(0)  # refuses in one line when the driver reports no GPU
        caffe_env.set_mode(None)
    sizes = SIZES["short" if args.short else "paper"]
    doc = {"device": device.describe(), "sizes": "short" if args.short else "paper",
           "python": platform.python_version(), "numpy": np.__version__,
           "caffe": caffe_env.caffe_prefix(), "benchmarks": {}}
    print("[gpu_check] %s" % doc["device"], flush=True)
    doc["tests"] = run_tests(args.out, device, args.short)
    print("[gpu_check] tests: %s" % doc["tests"]["summary"], flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        split = market1501.parse(synthetic.generate(os.path.join(tmp, "tree"), num_ids=NUM_IDS, seed=0,
                                                    quiet=True))
        num_ids = max(split["trials"][0]["train_labels"]) + 1
        runs = (("googlenet", lambda: bench_geng16(tmp, split, num_ids, "googlenet", sizes["googlenet"],
                                                    sizes["rounds"], device)),
                ("dgdnet", lambda: bench_geng16(tmp, split, num_ids, "dgdnet", sizes["dgdnet"],
                                                 sizes["rounds"], device)),
                ("mtdnet", lambda: bench_mtdnet(tmp, split, sizes["mtdnet"], sizes["rounds"], device)),
                ("cir", lambda: bench_cir(*sizes["cir"], sizes["naive"], device)))
        for key, bench in runs:
            if time.perf_counter() - start > args.budget:
                doc["benchmarks"][key] = {"skipped": "over the %.0f s budget" % args.budget}
            else:
                t0 = time.perf_counter()
                try:
                    doc["benchmarks"][key] = dict(bench(), seconds=round(time.perf_counter() - t0, 1))
                except Exception as err:  # recorded, and the run goes on: the device's minutes are few
                    doc["benchmarks"][key] = {"error": "%s: %s" % (type(err).__name__, cli.message(err))}
                finally:
                    caffe_env.set_mode(None)
            print("[gpu_check] %s: %s" % (key, json.dumps(doc["benchmarks"][key])), flush=True)
    doc["projections"] = projections(doc["benchmarks"])
    doc["seconds"] = round(time.perf_counter() - start, 1)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(markdown(doc))
    print("[gpu_check] wrote %s (%.0f s)" % (os.path.join(args.out, "gpu_check.md"), doc["seconds"]), flush=True)
    t = doc["tests"]
    if t["failed"] or t["errors"] or t["exit_status"] not in (0, 5) or not t["passed"]:
        raise cli.Failure("GPU tests: %s (see %s)" % (t["summary"], os.path.join(args.out, "tests.log")))
    bad = [k for k, b in doc["benchmarks"].items() if "error" in b]
    if bad:
        raise cli.Failure("benchmark(s) %s failed: %s" % (", ".join(bad), doc["benchmarks"][bad[0]]["error"]))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
