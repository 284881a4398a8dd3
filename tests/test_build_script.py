"""caffe_build/build_caffe.sh reuses a finished build, and its failures say
what is missing in one line (both sources tried; the apt package's name)."""
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "caffe_build", "build_caffe.sh")
# The container images' runtime stage holds no compiler and installs no
# build dependencies (CAFFE_NO_APT_INSTALL=1): the script stops at its apt
# check there, before what these tests look at.
needs_build_env = pytest.mark.skipif(
    shutil.which("cmake") is None and os.environ.get("CAFFE_NO_APT_INSTALL") == "1",
    reason="no Caffe build environment here (a runtime image)")


def run_build(env_extra, *args):
    env = dict(os.environ, PYTHON=sys.executable, **env_extra)
    return subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=600)


@needs_build_env
def test_second_run_reuses_the_cached_build():
    proc = run_build({})
    assert proc.returncode == 0, proc.stderr
    assert "reusing build" in proc.stderr
    assert "compiling" not in proc.stderr
    prefix = proc.stdout.strip().splitlines()[-1].split("=", 1)[1]
    with open(os.path.join(ROOT, ".venv", "caffe-prefix")) as f:
        assert prefix == f.read().strip()


@needs_build_env
def test_no_source_reachable_names_both_sources(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_OFFLINE": "1",
                      "CAFFE_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("build_caffe: error: no Caffe source")
    assert "GitHub tarball https://codeload.github.com/BVLC/caffe" in last
    assert "Debian source package caffe=1.0.0+git20180821.99bd997-8 (bullseye)" in last


@needs_build_env
def test_missing_apt_package_is_named(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_NO_APT_INSTALL": "1",
                      "CAFFE_EXTRA_APT_DEPS": "reid-no-such-package"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("build_caffe: error: missing apt build dependencies: reid-no-such-package")


@needs_build_env
def test_user_tree_that_is_not_caffe_is_refused(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_SRC": str(tmp_path)})
    assert proc.returncode == 1
    assert "is not a Caffe source tree" in proc.stderr


def test_every_patch_has_a_reason_and_is_in_the_series():
    pdir = os.path.join(ROOT, "caffe_build", "caffe_patches")
    series = open(os.path.join(pdir, "series")).read().split()
    assert sorted(series) == sorted(f for f in os.listdir(pdir) if f.endswith(".patch"))
    for name in series:
        first = open(os.path.join(pdir, name)).readline()
        assert first.startswith("Reason: ") and len(first) > 20, name


def _pristine_trees():
    """The BVLC trees build_caffe.sh keeps in its cache (GitHub and/or
    Debian download), or the user's CAFFE_SRC."""
    if os.environ.get("CAFFE_SRC"):
        return [os.environ["CAFFE_SRC"]]
    cache = os.environ.get("CAFFE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "reid-caffe")
    return sorted(glob.glob(os.path.join(cache, "src", "github-*")) +
                  glob.glob(os.path.join(cache, "src", "debian-*")))


def test_series_applies_and_threads_touch_cuda_only_in_gpu_mode(tmp_path):
    """A CUDA build must not query the device when a prefetching
    data layer starts its thread in CPU mode (patch 0009), and GPU mode must
    still query the device and set it in the thread."""
    trees = _pristine_trees()
    if not trees:
        pytest.skip("no Caffe source tree in the build cache")
    pdir = os.path.join(ROOT, "caffe_build", "caffe_patches")
    series = open(os.path.join(pdir, "series")).read().split()
    patches = [open(os.path.join(pdir, name)).read() for name in series]
    thread = "src/caffe/internal_thread.cpp"
    touched = sorted({thread} | {f for text in patches for f in re.findall(r"^\+\+\+ b/(\S+)", text, re.M)})
    for tree in trees:
        # Only the files the series touches: copying the whole tree is slow.
        work = tmp_path / os.path.basename(tree)
        for f in touched:
            os.makedirs(os.path.dirname(work / f), exist_ok=True)
            shutil.copy(os.path.join(tree, f), work / f)
        for name, text in zip(series, patches):
            proc = subprocess.run(["patch", "-d", str(work), "-p1", "--forward", "--quiet"],
                                  input=text, capture_output=True, text=True)
            assert proc.returncode == 0, (tree, name, proc.stdout + proc.stderr)
        code = (work / thread).read_text()
        start = code[code.index("void InternalThread::StartInternalThread()"):]
        entry = code[code.index("void InternalThread::entry("):]
        for body, call in ((start, "CUDA_CHECK(cudaGetDevice(&device));"),
                           (entry, "CUDA_CHECK(cudaSetDevice(device));")):
            body = body[:body.index("\n}\n")]
            assert re.search(r"if \(mode == Caffe::GPU\) \{\s*" + re.escape(call), body), (tree, call)
            assert body.count("cuda") == 1, (tree, body)


def test_fatbin_archs_reads_entries_of_a_hand_made_fatbin():
    import struct
    from caffe_build.fatbin_archs import FATBIN_MAGIC, fatbin_archs

    def entry(kind, arch, payload):
        header = struct.pack("<HHIQ", kind, 0, 64, len(payload)) + b"\0" * 12 + struct.pack("<I", arch)
        return header + b"\0" * (64 - len(header)) + payload
    body = entry(2, 90, b"x" * 16) + entry(1, 80, b"y" * 8)
    blob = b"junk" + struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body + b"tail"
    assert fatbin_archs(blob) == {"sm_90", "compute_80"}
    assert fatbin_archs(b"no device code here") == set()


def test_an_unknown_part_to_leave_out_is_refused(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_WITHOUT": "opencv cudnn"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "build_caffe: error: CAFFE_WITHOUT: unknown part 'cudnn' (expected opencv, leveldb, hdf5)")


def test_the_without_hdf5_patch_guards_every_hdf5_call_of_net_cpp(tmp_path):
    """A build leaving HDF5 out (the GPU kit's) applies caffe_patches/without-hdf5/
    after the series: net.cpp's only unguarded HDF5 call is then guarded."""
    trees = _pristine_trees()
    if not trees:
        pytest.skip("no Caffe source tree in the build cache")
    pdir = os.path.join(ROOT, "caffe_build", "caffe_patches", "without-hdf5")
    series = open(os.path.join(pdir, "series")).read().split()
    assert sorted(series) == sorted(f for f in os.listdir(pdir) if f.endswith(".patch"))
    net = "src/caffe/net.cpp"
    for tree in trees:
        work = tmp_path / os.path.basename(tree)
        os.makedirs(work / "src/caffe")
        shutil.copy(os.path.join(tree, net), work / net)
        for name in series:
            text = open(os.path.join(pdir, name)).read()
            assert text.startswith("Reason: "), name
            proc = subprocess.run(["patch", "-d", str(work), "-p1", "--forward", "--quiet"],
                                  input=text, capture_output=True, text=True)
            assert proc.returncode == 0, (tree, name, proc.stdout + proc.stderr)
        depth, unguarded = 0, []
        for line in (work / net).read_text().splitlines():
            depth += line.startswith("#ifdef USE_HDF5") - line.startswith("#endif  // USE_HDF5")
            if re.search(r"\bH5[A-Z]\w*\(", line) and not depth:
                unguarded.append(line)
        assert unguarded == [], tree


NOISY_APT = """#!/bin/sh
for i in $(seq 40); do echo "Unpacking noise-$i ..."; done
echo "E: Unable to locate package reid-no-such-package" >&2
exit 100
"""


@needs_build_env
@pytest.mark.skipif(os.geteuid() != 0, reason="build_caffe.sh installs apt packages only as root")
def test_apt_output_goes_to_the_log_that_the_error_names(tmp_path):
    """apt-get's own lines stay off the terminal: the step is one line, the
    failure one line naming the log, and the log holds what apt-get said."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(NOISY_APT)
    (bin_dir / "apt-get").chmod(0o755)
    log = tmp_path / "setup.log"
    proc = run_build({"CAFFE_CACHE": str(tmp_path / "cache"), "CAFFE_EXTRA_APT_DEPS": "reid-no-such-package",
                      "PATH": "%s:%s" % (bin_dir, os.environ["PATH"]), "QUIET_LOG": str(log)})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == ("build_caffe: error: apt-get could not install: reid-no-such-package (log: %s)" % log)
    assert len(lines) == 2 and "Unpacking" not in proc.stderr, proc.stderr
    assert "Unpacking noise-40" in log.read_text()
    assert "Unable to locate package reid-no-such-package" in log.read_text()


@needs_build_env
def test_a_setup_with_everything_done_prints_two_lines():
    proc = subprocess.run(["bash", os.path.join(ROOT, "caffe_build", "setup.sh")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("[build_caffe] reusing build ")
    assert lines[1].startswith("[setup] ready: %s with pycaffe 1.0.0" % os.path.join(ROOT, ".venv"))
    assert proc.stdout == ""
