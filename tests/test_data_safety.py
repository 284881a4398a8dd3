"""Data safety through the real commands:
`python -m data_prep` never empties a folder it did not make and cleans
what a killed run left; its errors are one line naming the file or field;
an experiment reuses an LMDB only when made from the same split; the
MTDnet data layers refuse sizes Caffe would abort on."""
import json
import os
import re
import subprocess
import sys

import pytest

from common import cli
from common.atomic import Stale, read_marker
from common.config import ROOT
from data_prep.__main__ import main as prep_main
from data_prep.split_format import load_split, save_split
from tests import fixtures_datasets as fx
from tests.test_atomic import dead_pid, snapshot, user_folder


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return fx.make_market(str(tmp_path_factory.mktemp("safety")))


def prep(capsys, *argv):
    """Exit status and stderr lines of `python -m data_prep ARGV`, in-process."""
    status = cli.run(prep_main, list(argv))
    return status, capsys.readouterr().err.strip().splitlines()


def prep_process(*argv):
    env = dict(os.environ, TQDM_DISABLE="1")
    return subprocess.run([sys.executable, "-m", "data_prep"] + list(argv), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


# --- never delete what the package did not make ---------------------------------

def test_lmdb_into_a_users_folder_is_refused(market, tmp_path, capsys):
    mine, out = str(tmp_path / "mine"), str(tmp_path / "s.json")
    before = user_folder(mine)
    status, err = prep(capsys, "market1501", market, "--out", out, "--lmdb", mine, "--size", "64", "32")
    assert status == 2 and err == [
        "error: refusing to replace %s: an existing folder this package did not make (no "
        ".reid-made.json in it); move it away or choose another output" % mine]
    assert snapshot(mine) == before
    assert not os.path.exists(out)  # refused before anything was written


def test_cuhk03_image_dir_of_a_users_files_is_refused(tmp_path, capsys):
    top = fx.make_cuhk03(str(tmp_path / "data"), persons=(4, 4, 4, 2, 2), keys=("labeled", "testsets"))
    image_dir = str(tmp_path / "images")
    before = user_folder(os.path.join(image_dir, "labeled"))
    status, err = prep(capsys, "cuhk03", top, "--out", str(tmp_path / "c.json"), "--image-dir", image_dir)
    assert status == 2 and len(err) == 1
    assert err[0].startswith("error: refusing to replace %s: an existing folder"
                             % os.path.join(image_dir, "labeled"))
    assert snapshot(os.path.join(image_dir, "labeled")) == before
    # an extraction of ours records its .mat, and is remade for another one
    # (reuse of the same: test_parsers.test_cuhk03_extracts_once_and_detected)
    labeled = str(tmp_path / "png" / "labeled")
    argv = ["cuhk03", top, "--out", str(tmp_path / "c.json"), "--image-dir", str(tmp_path / "png"),
            "--num-val", "5"]
    assert prep(capsys, *argv)[0] == 0
    assert read_marker(labeled)["record"]["source"]["mat"] == os.path.join(top, "cuhk-03.mat")
    probe = os.path.join(labeled, "1_001_1_01.png")
    os.utime(probe, ns=(0, 0))
    os.utime(os.path.join(top, "cuhk-03.mat"), ns=(10 ** 9, 10 ** 9))
    assert prep(capsys, *argv)[0] == 0
    assert os.stat(probe).st_mtime_ns != 0           # another .mat (mtime): extracted again


def test_synthetic_over_a_users_folder_is_refused(tmp_path, capsys):
    mine = str(tmp_path / "mine")
    before = user_folder(mine)
    status, err = prep(capsys, "synthetic", mine, "--out", str(tmp_path / "s.json"), "--num-ids", "4")
    assert status == 2 and len(err) == 1 and err[0].startswith("error: refusing to replace %s" % mine)
    assert snapshot(mine) == before


def test_a_killed_builds_temporary_is_cleaned_by_the_next_run(market, tmp_path, capsys):
    db = str(tmp_path / "train.lmdb")
    killed = str(tmp_path / (".train.lmdb.tmp-%d-x1y2z3" % dead_pid()))
    os.makedirs(killed)
    with open(os.path.join(killed, "data.mdb"), "wb") as f:
        f.write(b"\0" * 8192)
    status, _ = prep(capsys, "market1501", market, "--out", str(tmp_path / "s.json"), "--lmdb", db,
                     "--size", "16", "8")
    assert status == 0
    assert sorted(os.listdir(tmp_path)) == ["s.json", "train.lmdb"]
    # the LMDB is ours now: a second build replaces it
    assert prep(capsys, "market1501", market, "--out", str(tmp_path / "s.json"), "--lmdb", db,
                "--size", "8", "4")[0] == 0
    assert read_marker(db)["record"]["size"] == [8, 4]


# --- one-line errors naming the file or field --------------------------------------

def test_out_that_is_a_folder_is_refused_first(tmp_path):
    out, tree = str(tmp_path / "splits"), str(tmp_path / "tree")
    before = user_folder(out)
    r = prep_process("synthetic", tree, "--out", out, "--num-ids", "4")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --out %s is a folder; give the split file's path" % out]
    assert snapshot(out) == before
    assert not os.path.exists(tree)  # refused before the tree was drawn


def test_merge_of_a_json_list_is_one_line(market, tmp_path):
    good, bad = str(tmp_path / "good.json"), str(tmp_path / "list.json")
    assert prep_process("market1501", market, "--out", good).returncode == 0
    with open(bad, "w") as f:
        json.dump([load_split(good)], f)  # a list holding a split is not a split
    r = prep_process("merge", bad, good, "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: %s: not a reid-split/1 document (a JSON list, not an object)" % bad]
    with open(bad, "w") as f:
        f.write('{"format": "reid-split/1", "dataset": "x", "root": "/", "images": [3], "trials": []}')
    r = prep_process("merge", good, bad, "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: %s: images[0] must be an object, got a JSON number" % bad]
    assert not os.path.exists(str(tmp_path / "m.json"))


# --- an experiment's LMDB: reused only when made from the same split -------------

def test_experiment_lmdb_of_a_changed_split_is_refused_then_remade(market, tmp_path, capsys):
    from data_prep.lmdb_builder import read_index
    from steps.stages import Context, lmdb
    ctx = Context(run_dir=str(tmp_path / "run"), progress=False)
    path = ctx.path("data", "market.json")
    assert prep(capsys, "market1501", market, "--out", path)[0] == 0
    db = lmdb(ctx, path, "train", (16, 8))
    assert read_index(db)["count"] == 6
    data = os.path.join(db, "data.mdb")
    os.utime(data, ns=(0, 0))
    assert lmdb(ctx, path, "train", (16, 8)) == db and os.stat(data).st_mtime_ns == 0  # reused

    split = load_split(path)
    trial = split["trials"][0]
    keep = [k for k, lab in enumerate(trial["train_labels"]) if lab < 2]  # one identity fewer
    trial["train"] = [trial["train"][k] for k in keep]
    trial["train_labels"] = [trial["train_labels"][k] for k in keep]
    save_split(split, path)
    with pytest.raises(Stale, match=re.escape("%s was made with split_sha1 = " % db)):
        lmdb(ctx, path, "train", (16, 8))
    assert read_index(db)["count"] == 6 and os.stat(data).st_mtime_ns == 0  # left as it was
    ctx.recompute = True
    assert lmdb(ctx, path, "train", (16, 8)) == db
    assert read_index(db)["count"] == 4


# --- MTDnet's data layers: sizes Caffe would abort on ------------------------------

TRIPLET_SCRIPT = """
import json, sys, caffe
from caffe import layers as L
from common.caffe_env import net_from_spec
for params in json.loads(sys.argv[1]):
    n = caffe.NetSpec()
    n.data = L.Python(python_param=dict(module="layers.triplet_data", layer="TripletData",
                                        param_str=json.dumps(params)))
    try:
        net_from_spec(n, caffe.TRAIN)
        print("built")
    except Exception as err:
        print(err)
"""


def test_triplet_data_refuses_sizes_caffe_cannot_hold(market, tmp_path, capsys):
    """Run in a fresh process: before the check, Caffe's CHECK on the blob
    size aborted the process (and a huge per_pair exhausted memory)."""
    db = str(tmp_path / "train.lmdb")  # 3 identities x 2 cameras: 6 ordered positive pairs
    assert prep(capsys, "market1501", market, "--out", str(tmp_path / "s.json"), "--lmdb", db,
                "--size", "16", "8")[0] == 0
    cases = [dict(source=db, batch=100000000), dict(source=db, per_pair=1000000000),
             dict(source=db, batch=4, size=40, per_pair=100)]
    r = subprocess.run([sys.executable, "-c", TRIPLET_SCRIPT, json.dumps(cases)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines() == [
        "TripletData: param_str 'batch' = 100000000, 'size' = 227 make top 'data' "
        "300000000x3x227x227 = 46376100000000 values, more than a Caffe blob holds "
        "(INT_MAX = 2147483647)",
        "TripletData: param_str 'per_pair' = 1000000000 gives 6000000000 triplets for the 6 "
        "positive pairs of %s, more than 67108864" % db,
        "built"]
