"""Every number says where it came from (common/provenance.py):
the record's facts checked against their sources (git, the files, the
Caffe prefix, /proc), and the report's results.json / results.md carry it."""
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys

import numpy as np
import pytest

from common import caffe_env, provenance
from common.config import ROOT
from common.version import VERSION
from evaluation.report import markdown, write_report


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", "-C", cwd] + list(args), check=True, capture_output=True,
                          text=True).stdout


def _sha1(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


def test_git_commit_and_dirty_flag_agree_with_git():
    if not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout (a container image): containers/test_image.sh checks "
                    "the image's recorded state against the checkout it was built from")
    # Read git before and after: a commit landing in between is either.
    before = (_git("rev-parse", "HEAD").strip(), bool(_git("status", "--porcelain").strip()))
    state = provenance.git_state()
    after = (_git("rev-parse", "HEAD").strip(), bool(_git("status", "--porcelain").strip()))
    assert (state["commit"], state["dirty"]) in (before, after)


def test_dirty_flag_flips_when_a_tracked_file_changes(tmp_path):
    repo = str(tmp_path / "repo")
    os.makedirs(repo)
    _git("init", "-q", cwd=repo)
    with open(os.path.join(repo, "a.txt"), "w") as f:
        f.write("one\n")
    _git("add", "a.txt", cwd=repo)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a", cwd=repo)
    clean = provenance.git_state(repo)
    assert clean == {"commit": _git("rev-parse", "HEAD", cwd=repo).strip(), "dirty": False,
                     "changed": 0}
    with open(os.path.join(repo, "a.txt"), "w") as f:
        f.write("two\n")
    assert provenance.git_state(repo)["dirty"] is True
    assert provenance.git_state(str(tmp_path))["commit"] is None  # not a checkout: said so


def test_outside_a_checkout_the_images_recorded_state_stands_for_git(tmp_path):
    tree = tmp_path / "reid"           # an image's /reid: the project, no .git
    tree.mkdir()
    record = tree / provenance.SOURCE_STATE
    record.write_text('{"commit": "%s", "dirty": true, "changed": 2}\n' % ("ab" * 20))
    assert provenance.git_state(str(tree)) == {"commit": "ab" * 20, "dirty": True, "changed": 2,
                                               "recorded": str(record)}
    record.write_text("{not json")
    broken = provenance.git_state(str(tree))
    assert broken["commit"] is None and str(record) in broken["error"]
    # a checkout's own git wins over a record that happens to lie in it
    _git("init", "-q", cwd=str(tree))
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "a",
         cwd=str(tree))
    state = provenance.git_state(str(tree))
    assert state["commit"] == _git("rev-parse", "HEAD", cwd=str(tree)).strip()
    assert "recorded" not in state


def _run_dir(tmp_path):
    """A run directory as an experiment leaves it: splits under data/, a
    state.json per training stage (and a dead write's temporary)."""
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "data" / "market1501_std.json").write_text('{"images": [1, 2]}\n')
    # a record beside a derived split (common.records) is no split
    (run / "data" / "market1501_std.json.record.json").write_text('{"record": {}}\n')
    for stage, it in (("market1501_t0/step1", 3), ("market1501_t0/step2", 6), ("mtdnet", 150)):
        (run / stage).mkdir(parents=True)
        (run / stage / "state.json").write_text(json.dumps({"iter": it, "snapshot": None}))
    (run / ".mtdnet.tmp-1-x").mkdir()
    (run / ".mtdnet.tmp-1-x" / "state.json").write_text('{"iter": 1}')
    return run


def test_record_of_an_invocation_and_its_step(tmp_path):
    run = _run_dir(tmp_path)
    other = tmp_path / "given_split.json"
    other.write_text('{"x": 1}\n')
    argv = ["geng16", "table2", "--scale", "0.5", "--run-dir", "runs/x y"]
    options = {"scale": 0.5, "k": None, "seed": 3, "experiment": "geng16 table2",
               "augment": [1, 2]}
    with provenance.invocation("tools.reproduce", argv, options, str(run), gpu=None):
        own = provenance.step("tools.evaluate", ["--features", "f.npz"], {"protocol": "market"})
        doc = provenance.gather(own, splits=[str(other)])
    assert doc["options"] == options and doc["command"]["argv"] == argv
    assert shlex.split(doc["command"]["rerun"]) == ["cd", os.getcwd(), "&&", sys.executable, "-m",
                                                    "tools.reproduce"] + argv
    assert doc["step"]["options"] == {"protocol": "market"}
    assert doc["step"]["command"]["argv"] == ["--features", "f.npz"]
    split = str(run / "data" / "market1501_std.json")
    assert doc["splits"] == {str(other): _sha1(str(other)), split: _sha1(split)}
    assert doc["stage_iterations"] == {"market1501_t0/step1": 3, "market1501_t0/step2": 6,
                                       "mtdnet": 150}
    assert doc["run_dir"] == str(run) and doc["gpu"] is None
    assert 0 <= doc["wall_time_s"] < 60
    assert json.loads(json.dumps(doc)) == doc
    # Outside an invocation, the step is the command.
    alone = provenance.gather(provenance.step("tools.evaluate", ["--out", "r"], {"seed": 0}))
    assert alone["command"]["module"] == "tools.evaluate" and "step" not in alone
    assert alone["options"] == {"seed": 0}


def test_software_machine_and_caffe_build():
    import google.protobuf
    doc = provenance.gather()
    assert doc["versions"]["python"] == platform.python_version()
    assert doc["versions"]["numpy"] == np.__version__
    assert doc["versions"]["protobuf"] == google.protobuf.__version__
    with open("/proc/cpuinfo") as f:
        model = next(l.split(":", 1)[1].strip() for l in f if l.lower().startswith("model name"))
    assert doc["cpu"]["model"] == model and doc["cpu"]["cores"] == os.cpu_count()
    build = doc["caffe"]
    prefix = caffe_env.caffe_prefix()
    assert build["prefix"] == prefix
    assert os.path.basename(prefix) == "%s-%s" % (build["variant"], build["key"])
    with open(os.path.join(prefix, ".complete")) as f:
        assert f.read().startswith("source %s;" % build["source"])
    series = os.path.join(ROOT, "caffe_build", "caffe_patches", "series")
    with open(series) as f:
        names = [l.strip() for l in f if l.strip()]
    assert build["patches"] == [
        {"name": n, "sha1": _sha1(os.path.join(os.path.dirname(series), n))} for n in names]
    # NumPy's OpenBLAS is its wheel's own; Caffe's is the one libcaffe links.
    blas = doc["blas"]
    assert blas["numpy"]["library"].startswith(os.path.dirname(np.__file__))
    assert blas["numpy"]["corename"]
    libcaffe = next(p for p in provenance._mapped("libcaffe"))
    ldd = subprocess.run(["ldd", libcaffe], capture_output=True, text=True).stdout
    linked = [os.path.realpath(l.split("=>")[1].split("(")[0].strip()) for l in ldd.splitlines()
              if "=>" in l]
    assert blas["caffe"]["library"] in linked
    assert blas["caffe"]["corename"]


def test_report_records_provenance_and_ends_with_its_footer(tmp_path):
    rows = [{"name": "single query", "cmc": np.linspace(0.5, 1, 20), "mAP": 0.4}]
    with provenance.invocation("tools.demo", ["--run-dir", str(tmp_path / "run")], {"seed": 0},
                               str(_run_dir(tmp_path))):
        paths = write_report(str(tmp_path / "rep"), rows, "t")
    with open(paths["results.json"]) as f:
        doc = json.load(f)["provenance"]
    assert doc["command"]["module"] == "tools.demo" and doc["options"] == {"seed": 0}
    assert doc["package"] == {"name": "reid-caffe", "version": VERSION}
    with open(paths["results.md"]) as f:
        text = f.read()
    assert text == markdown(rows, "t", doc)
    footer = text[text.index("\n---\n"):]
    assert "Made by: `%s`" % doc["command"]["rerun"] in footer
    assert "Code: reid-caffe %s, git %s" % (VERSION, doc["git"]["commit"][:12]) in footer
    assert "market1501_t0/step2 6" in footer and "market1501_std.json %s" % (
        doc["splits"][str(tmp_path / "run" / "data" / "market1501_std.json")][:12]) in footer
    assert "Options: seed=0" in footer and "Wall time: " in footer
