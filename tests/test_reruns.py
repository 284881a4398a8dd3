"""What decides a stage's result decides its rerun (experiments/causes.py),
driven through the real `python -m tools.reproduce` on a small synthetic
Market-layout set, in a copy of the checkout that a test may edit:

- a comment or docstring in every package retrains nothing and rebuilds no
  LMDB (nothing runs at all);
- a change to a Python layer's arithmetic reruns exactly the stages whose
  nets name it, and what reads them; --plan names the module first;
- rewritten, added or removed images make a new split and everything after
  it, beside the old stages; the same data under another path reuses every
  stage;
- a command killed by SIGKILL mid-training leaves a lock that the same
  command clears (a notice) before resuming from the snapshot; a second
  command on a store in use is refused naming the holder;
- a setting the data cannot satisfy is refused when its stage starts,
  before any training;
- stage ids of unchanged work are those of the layout before."""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common.config import ROOT
from common.records import sha1
from data_prep import synthetic
from tests.helpers import snapshot_iterations, wait_for_snapshot

SID_PV = "geng16 table8 market dgdnet sid_pv scratch".split()
SID = "geng16 table8 market dgdnet sid scratch".split()
SMALL = ["--k", "2", "--augment", "0", "--scale", "0.00004"]
# the checkout's code, copied so that a test can edit it; .venv is linked
# (the Caffe build it names is part of a stage's causes)
CODE = ("common", "data_prep", "layers", "networks", "training", "evaluation", "steps",
        "unsupervised", "experiments", "tools", "caffe_build")


def copy_checkout(dest, source=ROOT):
    os.makedirs(dest)
    ignore = shutil.ignore_patterns("__pycache__")
    for name in CODE:
        shutil.copytree(os.path.join(source, name), os.path.join(dest, name), ignore=ignore)
    os.symlink(os.path.join(ROOT, ".venv"), os.path.join(dest, ".venv"))
    return str(dest)


def reproduce(checkout, argv, **kw):
    """tools.reproduce of `checkout`, in a process of its own (the jobs too:
    PYTHONPATH puts the copy before the venv's checkout)."""
    env = dict(os.environ, PYTHONPATH=checkout)
    return subprocess.run([sys.executable, "-m", "tools.reproduce"] + argv, cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=900, **kw)


def ok(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def folders(store):
    """{kind/id: (mtime, record)} of every stage folder in the store."""
    out = {}
    for path in glob.glob(os.path.join(store, "*", "*")):
        kind = os.path.basename(os.path.dirname(path))
        if kind == "work":
            continue
        rel = os.path.relpath(path, store)
        record = os.path.join(store, ".workflow", "stages", rel + ".json")
        out[rel] = (os.stat(path).st_mtime_ns, open(record).read() if os.path.isfile(record)
                    else None)
    return out


def kinds_of(names):
    out = {}
    for name in names:
        kind = name.split(os.sep)[0]
        out[kind] = out.get(kind, 0) + 1
    return out


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A dataset, a copy of the checkout and a store in which both Table 8
    scratch rows (SID + PV and SID alone) are made: they share the split and
    the LMDB."""
    base = tmp_path_factory.mktemp("baseline")
    data = base / "data"
    synthetic.generate(str(data / "market1501"), num_ids=12, seed=4, quiet=True)
    checkout = copy_checkout(base / "code")   # every test's copy is of this one
    store = str(base / "runs")
    argv = SID_PV + [","] + SID + ["--data-root", str(data), "--run-dir", store] + SMALL
    ok(reproduce(checkout, argv))
    return {"data": str(data), "store": store, "argv": argv, "code": checkout}


@pytest.fixture
def setup(baseline, tmp_path):
    """The baseline's data and store, copied, and a fresh copy of the code."""
    data, store = str(tmp_path / "data"), str(tmp_path / "runs")
    shutil.copytree(baseline["data"], data)
    shutil.copytree(baseline["store"], store, symlinks=True)
    argv = [data if a == baseline["data"] else store if a == baseline["store"] else a
            for a in baseline["argv"]]
    return {"data": data, "store": store, "argv": argv,
            "code": copy_checkout(tmp_path / "code", baseline["code"])}


def edit(checkout, module, old, new):
    path = os.path.join(checkout, module)
    with open(path) as f:
        text = f.read()
    assert old in text, (module, old)
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


def test_a_comment_in_every_package_retrains_nothing(setup):
    code, store = setup["code"], setup["store"]
    before = folders(store)
    # a comment at the end of one module of each package, and a docstring reworded
    for package in CODE[:-1]:
        module = sorted(glob.glob(os.path.join(code, package, "*.py")))[-1]
        with open(module, "a") as f:
            f.write("\n# a comment that changes no result\n")
    edit(code, "layers/pair_dropout.py", '"""`count` masks of', '"""Return `count` masks of')
    edit(code, "data_prep/lmdb_builder.py", "def build_lmdb(", "\n\ndef build_lmdb(")
    out = ok(reproduce(code, setup["argv"]))
    assert "0 to run" in out.splitlines()[0], out
    assert folders(store) == before
    # the layer change is seen: this copy of the code is the one that runs
    edit(code, "layers/pair_dropout.py", "scale = np.float32(1.0 /", "scale = np.float32(0.5 /")
    plan = ok(reproduce(code, setup["argv"] + ["--plan"]))
    assert "run: code (layers/pair_dropout.py)" in plan


def test_a_layer_change_reruns_exactly_the_stages_that_use_it(setup):
    code, store = setup["code"], setup["store"]
    before = folders(store)
    (trained,) = [p for p in glob.glob(os.path.join(store, "geng16", "*", "final.caffemodel"))
                  if "pv" in json.load(open(os.path.join(store, ".workflow", "stages", "geng16",
                                                         p.split(os.sep)[-2] + ".json")))
                  ["config"]["net"]["losses"]]
    old_weights = sha1(trained)
    # halve the masks of pairwise-consistent dropout (SID + PV's nets only)
    edit(code, "layers/pair_dropout.py", "scale = np.float32(1.0 /", "scale = np.float32(0.5 /")
    plan = ok(reproduce(code, setup["argv"] + ["--plan"]))
    lines = {line.split()[1]: line for line in plan.splitlines()
             if line.startswith("  ") and "[" in line}
    reasons = {stage: line.rsplit("[", 1)[1] for stage, line in lines.items()}
    rerun = {s for s, r in reasons.items() if r.startswith("run")}
    assert {s.split("-")[0] for s in rerun} == {
        "market1501_t0", "market1501_t0_t0", "geng16_table8_market_dgdnet_sid_pv_scratch"}
    assert len(rerun) == 3
    (geng16,) = [s for s in rerun if s.startswith("market1501_t0-")]
    assert reasons[geng16] == "run: code (layers/pair_dropout.py)]"
    (features,) = [s for s in rerun if s.startswith("market1501_t0_t0-")]
    (report,) = [s for s in rerun if s.startswith("geng16_table8")]
    assert reasons[features] == "run: input (geng16/%s)]" % geng16
    assert reasons[report] == "run: input (features/%s)]" % features
    out = ok(reproduce(code, setup["argv"]))
    assert out.splitlines()[1].strip().startswith("code (layers/pair_dropout.py): 1 geng16")
    after = folders(store)
    changed = {k for k in before if after[k] != before[k]}
    assert kinds_of(changed) == {"geng16": 1, "features": 1, "report": 1}
    assert {k.split(os.sep)[1] for k in changed} == rerun
    assert set(after) == set(before)
    assert sha1(trained) != old_weights             # retrained with the new masks
    # and again: nothing
    assert "0 to run" in ok(reproduce(code, setup["argv"])).splitlines()[0]


def _first_image(data):
    return sorted(glob.glob(os.path.join(data, "market1501", "bounding_box_train", "*.jpg")))


def test_images_by_content_and_a_moved_dataset_reuses_every_stage(setup, tmp_path):
    code, store, data = setup["code"], setup["store"], setup["data"]
    before = folders(store)
    # the same data under another path: every stage reused, nothing runs
    moved = str(tmp_path / "elsewhere")
    shutil.copytree(data, moved)   # a copy: other paths, other modification times
    argv = [moved if a == data else a for a in setup["argv"]]
    out = ok(reproduce(code, argv))
    assert "0 to run" in out.splitlines()[0], out
    assert folders(store) == before
    # an added or a removed image: a new split and everything after it
    images = _first_image(moved)
    extra = images[0].replace("_c1s", "_c2s") if "_c1s" in images[0] else images[0][:-4] + "0.jpg"
    shutil.copyfile(images[1], extra)
    new_split = "run: new (data %s/market1501 changed (root))" % moved
    assert new_split in ok(reproduce(code, argv + ["--plan"]))
    os.remove(extra)
    os.remove(images[2])
    assert new_split in ok(reproduce(code, argv + ["--plan"]))
    # rewritten images (same names, other pictures, same sizes on disk or not)
    shutil.rmtree(moved)
    shutil.copytree(data, moved)
    for path in _first_image(moved):
        pixels = np.asarray(Image.open(path))
        Image.fromarray(255 - pixels).save(path)
    out = ok(reproduce(code, argv))
    assert out.splitlines()[1].strip().startswith("new: 1 split, 1 lmdb, 2 geng16"), out
    after = folders(store)
    assert {k: after[k] for k in before} == before          # the old stages are left as they were
    assert kinds_of(set(after) - set(before)) == {"split": 1, "lmdb": 1, "geng16": 2,
                                                  "features": 2, "report": 2}


def test_sigkill_mid_training_then_the_same_command_goes_on(baseline, tmp_path):
    code = baseline["code"]
    store = str(tmp_path / "runs")
    # 150K x 0.0002 = 30 iterations, a snapshot every 2
    argv = SID_PV + ["--data-root", baseline["data"], "--run-dir", store, "--k", "2",
                     "--augment", "0", "--scale", "0.0002", "--snapshot-every", "2"]
    env = dict(os.environ, PYTHONPATH=code)
    proc = subprocess.Popen([sys.executable, "-m", "tools.reproduce"] + argv, cwd=code, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_for_snapshot(proc, store, 4)
    # a second command on the store in use: refused, naming the holder
    second = reproduce(code, argv)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1].startswith(
        "error: %s is in use by pid %d on %s (" % (store, proc.pid, socket.gethostname()))
    # the OOM killer, or scancel past its grace time: the whole process group at once
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    ((state, stopped),) = snapshot_iterations(store).items()
    assert 4 <= stopped < 30
    done = reproduce(code, argv)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "notice: %s: cleared the lock of pid %d on %s" % (store, proc.pid,
                                                            socket.gethostname()) in done.stderr
    with open(state) as f:
        assert json.load(f)["iter"] == 30
    with open(os.path.join(os.path.dirname(state), "train.log")) as f:
        log = f.read()
    assert log.count("Initializing solver") == 2 and "SGDSolver: restoring history" in log
    assert not os.path.exists(os.path.join(store, ".workflow", "lock.json"))


def test_k_beyond_the_training_identities_is_refused_before_training(baseline, tmp_path):
    store = str(tmp_path / "runs")
    argv = SID_PV + ["--data-root", baseline["data"], "--run-dir", store, "--k", "50",
                     "--augment", "0", "--scale", "0.00004"]
    result = reproduce(baseline["code"], argv)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the workflow stopped: geng16/market1501_t0-"), last
    assert "k=50 identities per batch, but the training LMDB" in last
    assert "holds 6 identities" in last
    assert glob.glob(os.path.join(store, "work", "geng16", "*", "*", "train.log")) == []


# Stage ids of the layout before the rebuild: the demo's (synthetic data,
# no dataset path) and the model zoo's weights stay the same.
PINNED = ("split/source-4fbba61bfe38", "split/target-e5b0a0433ebf",
          "single_shot/target_single_shot-d934e36a1bc5", "weights/bvlc_googlenet-ffa4f24365ee",
          "weights/bvlc_reference_caffenet-554fd67e2a92")


def test_stage_ids_of_unchanged_work_stay(tmp_path):
    from dataclasses import asdict
    from experiments import demo, recipes
    demo_graph = recipes.graph({"experiments": ["demo"], "options": {"data_root": str(tmp_path)},
                                "demo": asdict(demo.Settings())})
    other = recipes.graph({"experiments": ["geng16 table3 viper", "mtdnet viper trp"],
                           "options": {"data_root": str(tmp_path / "absent")}})
    paths = {s.path for g in (demo_graph, other) for s in g.by_id.values()}
    assert set(PINNED) <= paths


def test_tools_train_refuses_to_continue_a_run_made_with_other_layer_code(baseline, tmp_path):
    """Outside the workflow too: a training's record holds the code of its
    loop and of the Python layers its net names."""
    from networks import geng16 as geng16_net
    code = copy_checkout(tmp_path / "code", baseline["code"])
    (lmdb,) = glob.glob(os.path.join(baseline["store"], "lmdb", "*"))
    net = tmp_path / "train.prototxt"
    net.write_text(geng16_net.net_text(geng16_net.geng16(
        base="dgdnet", num_ids=6, source=lmdb, k=2), "tiny"))
    solver = tmp_path / "solver.prototxt"
    solver.write_text(geng16_net.solver_text("train.prototxt", 2))
    argv = [sys.executable, "-m", "tools.train", "--solver", str(solver), "--run-dir",
            str(tmp_path / "run"), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=code)
    first = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    edit(code, "layers/pair_dropout.py", "scale = np.float32(1.0 /", "scale = np.float32(0.5 /")
    again = subprocess.run(argv, cwd=code, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2, again.stderr[-2000:]
    assert "was made with code.layers/pair_dropout.py = " in again.stderr.strip().splitlines()[-1]
