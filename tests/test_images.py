"""The container images' scripts (containers/, Dockerfile) where they run
without an engine: the record of the checkout an image is built with, and
the runtime libraries read off a Caffe build. Building the images and
running the suite inside is `make test-image` (containers/test_image.sh)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from common import provenance
from common.config import ROOT

CONTAINERS = os.path.join(ROOT, "containers")


def _script(name, *args):
    return subprocess.run(["bash", os.path.join(CONTAINERS, name)] + list(args),
                          capture_output=True, text=True, timeout=300)


def test_source_state_is_what_provenance_reads_in_an_image(tmp_path):
    commit = "0123456789abcdef" * 2 + "01234567"
    proc = _script("source_state.sh", commit, "3")
    assert proc.returncode == 0, proc.stderr
    (tmp_path / provenance.SOURCE_STATE).write_text(proc.stdout)
    assert provenance.git_state(str(tmp_path)) == {
        "commit": commit, "dirty": True, "changed": 3,
        "recorded": str(tmp_path / provenance.SOURCE_STATE)}
    clean = json.loads(_script("source_state.sh", commit, "0").stdout)
    assert clean == {"commit": commit, "dirty": False, "changed": 0}


def test_source_state_refuses_a_build_without_the_commit():
    for args, field in (([], "SOURCE_COMMIT"), (["HEAD", "0"], "SOURCE_COMMIT"),
                        (["ab" * 20, ""], "SOURCE_CHANGED")):
        proc = _script("source_state.sh", *args)
        assert proc.returncode == 1 and proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("source_state: error: %s" % field)
        assert "make image" in lines[0]


def test_the_dockerfile_writes_the_record_provenance_reads():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    writes = re.findall(r"containers/source_state\.sh .*> (\S+)", text)
    assert writes and set(writes) == {provenance.SOURCE_STATE}
    assert text.count("ARG SOURCE_COMMIT\nARG SOURCE_CHANGED\n") == 2   # both targets
    ignored = open(os.path.join(ROOT, ".dockerignore")).read().split()
    assert ".git" in ignored and ".venv" in ignored


def test_the_cuda_architectures_agree_with_the_build_script():
    docker = re.search(r'^ARG CUDA_ARCH_BIN="([^"]+)"', open(os.path.join(ROOT, "Dockerfile")).read(), re.M)
    script = re.search(r'^CUDA_ARCH_BIN="\$\{CUDA_ARCH_BIN:-([^}]+)\}"',
                       open(os.path.join(ROOT, "caffe_build", "build_caffe.sh")).read(), re.M)
    assert docker and script and docker.group(1) == script.group(1)


def test_runtime_libraries_of_the_caffe_build(tmp_path):
    prefix = provenance.caffe_prefix()
    proc = _script("runtime_libs.sh", prefix, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    packages = open(tmp_path / "packages.txt").read().split()
    # what libcaffe links: protobuf, glog, Boost.Python, OpenBLAS (an alternative), OpenCV
    for wanted in ("libprotobuf32", "libgoogle-glog0v6", "libboost-python1.74.0",
                   "libopencv-core406"):
        assert wanted in packages
    assert any(p.startswith("libopenblas0") for p in packages)
    assert not [p for p in packages if p.endswith("-dev")]
    for folder, _, files in os.walk(tmp_path / "root"):   # files from outside Debian, if any
        for f in files:
            assert not os.path.join(folder, f).startswith(str(tmp_path / "root" / prefix.lstrip("/")))


def test_runtime_libraries_refuse_what_is_no_caffe_prefix(tmp_path):
    proc = _script("runtime_libs.sh", str(tmp_path), str(tmp_path / "out"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runtime_libs: error: ")
    assert "libcaffe.so" in lines[0] and str(tmp_path) in lines[0]


STAND_IN_PODMAN = """#!/bin/sh
# A stand-in engine: the base image is there; a build edits the checkout
# (as a person would while it runs) when EDIT names a file; an image is 1 MB.
case "$1 $2" in
  "image inspect") case "$*" in *Size*) echo 1000000 ;; esac; exit 0 ;;
esac
if [ "$1" = build ]; then
  [ -z "$EDIT" ] || echo "# edited during the build" >> "$EDIT"
  exit 0
fi
exit 1
"""


def test_an_image_whose_checkout_changed_during_its_build_is_refused(tmp_path):
    if not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("needs a git checkout (an image holds none)")
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", ROOT, str(checkout)], check=True, timeout=300)
    # the scripts as they are in this tree, committed or not
    shutil.copytree(CONTAINERS, checkout / "containers", dirs_exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("podman", STAND_IN_PODMAN), ("runc", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]),
               IMAGE_LOGS=str(tmp_path / "logs"))
    script = str(checkout / "containers" / "build_image.sh")
    untouched = subprocess.run(["bash", script, "cpu"], env=env, capture_output=True, text=True,
                               timeout=120)
    assert untouched.returncode == 0, untouched.stderr
    assert untouched.stdout.strip().splitlines()[-1] == "reid-caffe:cpu"
    env["EDIT"] = str(checkout / "README.md")
    edited = subprocess.run(["bash", script, "cpu"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert edited.returncode == 1
    last = edited.stderr.strip().splitlines()[-1]
    assert last.startswith("build_image: error: the checkout changed while reid-caffe:cpu was built"), last
