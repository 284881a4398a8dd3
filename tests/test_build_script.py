"""Issue 2: tools/build_caffe.sh reuses a finished build, and its failures say
what is missing in one line (both sources tried; the apt package's name)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "build_caffe.sh")


def run_build(env_extra, *args):
    env = dict(os.environ, PYTHON=sys.executable, **env_extra)
    return subprocess.run(["bash", SCRIPT, *args], env=env, capture_output=True, text=True, timeout=600)


def test_second_run_reuses_the_cached_build():
    proc = run_build({})
    assert proc.returncode == 0, proc.stderr
    assert "reusing build" in proc.stderr
    assert "compiling" not in proc.stderr
    prefix = proc.stdout.strip().splitlines()[-1].split("=", 1)[1]
    with open(os.path.join(ROOT, ".venv", "caffe-prefix")) as f:
        assert prefix == f.read().strip()


def test_no_source_reachable_names_both_sources(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_OFFLINE": "1",
                      "CAFFE_DEBIAN_MIRROR": "http://127.0.0.1:9/debian"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("build_caffe: error: no Caffe source")
    assert "GitHub tarball https://codeload.github.com/BVLC/caffe" in last
    assert "Debian source package caffe=1.0.0+git20180821.99bd997-8 (bullseye)" in last


def test_missing_apt_package_is_named(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_NO_APT_INSTALL": "1",
                      "CAFFE_EXTRA_APT_DEPS": "reid-no-such-package"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("build_caffe: error: missing apt build dependencies: reid-no-such-package")


def test_user_tree_that_is_not_caffe_is_refused(tmp_path):
    proc = run_build({"CAFFE_CACHE": str(tmp_path), "CAFFE_SRC": str(tmp_path)})
    assert proc.returncode == 1
    assert "is not a Caffe source tree" in proc.stderr


def test_every_patch_has_a_reason_and_is_in_the_series():
    pdir = os.path.join(ROOT, "tools", "caffe_patches")
    series = open(os.path.join(pdir, "series")).read().split()
    assert sorted(series) == sorted(f for f in os.listdir(pdir) if f.endswith(".patch"))
    for name in series:
        first = open(os.path.join(pdir, name)).readline()
        assert first.startswith("Reason: ") and len(first) > 20, name


def test_fatbin_archs_reads_entries_of_a_hand_made_fatbin():
    import struct
    from tools.fatbin_archs import FATBIN_MAGIC, fatbin_archs

    def entry(kind, arch, payload):
        header = struct.pack("<HHIQ", kind, 0, 64, len(payload)) + b"\0" * 12 + struct.pack("<I", arch)
        return header + b"\0" * (64 - len(header)) + payload
    body = entry(2, 90, b"x" * 16) + entry(1, 80, b"y" * 8)
    blob = b"junk" + struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body + b"tail"
    assert fatbin_archs(blob) == {"sm_90", "compute_80"}
    assert fatbin_archs(b"no device code here") == set()
