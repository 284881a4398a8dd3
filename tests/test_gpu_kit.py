"""The GPU kit (caffe_build/gpu_kit.sh, tools/gpu_check.sh): a kit that is
not one is refused naming the file, and the rehearsal without a GPU passes:
the kit made (the cached CUDA build reused) and the check run at small sizes
in CPU mode inside a bare Debian 12 root with no network, where only
stand-ins for the GPU machine's own Python, packages and CUDA wheels are.
The rehearsal needs root and debootstrap (CI runs as root)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from bench import gpu_kit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_folder_without_a_kit_is_refused_naming_the_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_kit", str(tmp_path), str(tmp_path / "dest")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: %s: no GPU kit here (make gpu-kit makes one)" % (
        tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text(json.dumps({"key": "k", "archive": "kit.tar.xz"}))
    with pytest.raises(FileNotFoundError, match="kit.tar.xz: the kit's archive is missing"):
        gpu_kit.unpack(str(tmp_path), str(tmp_path / "dest"))


def test_gpu_check_refuses_another_python_in_one_line(tmp_path):
    proc = subprocess.run(["bash", "tools/gpu_check.sh", str(tmp_path), str(tmp_path / "out")],
                          cwd=ROOT, env=dict(os.environ, PYTHON=sys.executable),
                          capture_output=True, text=True, timeout=60)
    if sys.version_info[:2] == (3, 12):
        assert proc.stderr.strip().splitlines()[-1].startswith("error: %s: no GPU kit here" % tmp_path)
    else:
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines()[-1].endswith("the kit's pycaffe is for 3.12 (set PYTHON)")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("debootstrap"),
                    reason="the rehearsal needs root and debootstrap")
def test_rehearsal_in_a_bare_root_passes(tmp_path):
    kit = os.path.join(ROOT, "gpu-kit")  # make gpu-kit's folder: made or brought up to date
    made = subprocess.run(["bash", "caffe_build/gpu_kit.sh", kit], cwd=ROOT, capture_output=True,
                          text=True, timeout=4 * 3600)
    assert made.returncode == 0, made.stderr[-3000:]
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "caffe_build/gpu_kit_rehearsal.sh", kit, str(out), "--short"],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    assert doc["device"].startswith("CPU in the GPU's place")
    assert doc["python"].startswith("3.12.")
    assert doc["caffe"].startswith("/tmp/reid-gpu-kit-")  # the kit's pycaffe, unpacked in the root
    tests = doc["tests"]
    assert tests["passed"] >= 2 and tests["failed"] == tests["errors"] == 0
    geng16_layers = {"IdentitySampledData", "PairGeneration", "PairwiseConsistentDropout"}
    mtdnet_layers = {"TripletData", "TripletPairs", "L2Normalize", "TripletRankLoss"}
    for key, layers in (("googlenet", geng16_layers), ("dgdnet", geng16_layers), ("mtdnet", mtdnet_layers)):
        b = doc["benchmarks"][key]
        assert b["img_s"] > 0 and b["baseline_img_s"] > 0, b
        assert set(b["python_layers"]) == layers
    assert doc["benchmarks"]["cir"]["pairs_s"] > 0
    assert {p["net"] for p in doc["projections"]} == {"googlenet", "dgdnet", "mtdnet", "cir"}
    assert (out / "gpu_check.md").read_text().startswith("# GPU check")
