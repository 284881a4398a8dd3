"""`python -m data_prep` as a user runs it (subprocess) on a Market-1501
fixture: the split written, the summary line, one-line errors, merging."""
import os
import subprocess
import sys

import pytest

from common.config import ROOT
from data_prep.disk import human
from data_prep.lmdb_builder import read_index
from data_prep.split_format import load_split
from tests import fixtures_datasets as fx


def run(*args):
    env = dict(os.environ, TQDM_DISABLE="1")
    return subprocess.run([sys.executable, "-m", "data_prep"] + list(args), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    return fx.make_market(str(tmp_path_factory.mktemp("cli")))


def test_market_split_and_summary(market, tmp_path):
    out = str(tmp_path / "splits" / "market.json")
    r = run("market1501", market, "--out", out)
    assert r.returncode == 0, r.stderr
    split = load_split(out)
    assert split["root"] == os.path.abspath(market) and len(split["images"]) == 41
    size = sum(os.path.getsize(os.path.join(market, im["path"])) for im in split["images"])
    # ids > 0: 3 train + 3 test; cameras 1, 2, 3 (+4 in gt_bbox, +6 from a distractor)
    assert r.stdout.strip().splitlines()[-1] == (
        "market1501: 41 images, 6 identities, 5 cameras, %s on disk -> %s" % (human(size), out))
    assert human(1023) == "1023 B" and human(3 * 1024 ** 2 // 2) == "1.5 MiB"


def test_errors_are_one_line(market, tmp_path):
    out = str(tmp_path / "s.json")
    r = run("market1501", str(tmp_path / "missing"), "--out", out)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "market1501 root not found or not a folder: %s" % (tmp_path / "missing") in r.stderr
    r = run("market1501", market, "--out", out, "--num-classes", "2")
    assert r.returncode == 2 and "beyond the net's 2 identities" in r.stderr
    assert not os.path.exists(out)  # no split written for a bad run
    r = run("market1501", market, "--out", out, "--version", "labeled")
    assert r.returncode == 2 and "market1501 does not take --version" in r.stderr
    r = run("viper", market, "--out", out)
    assert r.returncode == 2 and "missing 'cam_a', 'cam_b'" in r.stderr


def test_merge_command(market, tmp_path):
    a, b, m = (str(tmp_path / n) for n in ("a.json", "b.json", "m.json"))
    assert run("market1501", market, "--out", a).returncode == 0
    assert run("market1501", market, "--out", b, "--no-multi-query").returncode == 0
    r = run("merge", a, b, "--out", m, "--eval-from", "1")
    assert r.returncode == 0, r.stderr
    s = load_split(m)
    assert s["dataset"] == "market1501+market1501" and len(s["images"]) == 41 + 26  # b: no gt_bbox
    assert len(set(s["trials"][0]["train_labels"])) == 6
    assert s["trials"][0]["query"] == [i + 41 for i in load_split(b)["trials"][0]["query"]]


def test_lmdb_option(market, tmp_path):
    out, db = str(tmp_path / "s.json"), str(tmp_path / "train.lmdb")
    r = run("market1501", market, "--out", out, "--lmdb", db, "--size", "16", "8")
    assert r.returncode == 0, r.stderr
    index = read_index(db)
    assert index["count"] == 6 and (index["height"], index["width"]) == (16, 8)
    assert sorted(index["label"]) == sorted(load_split(out)["trials"][0]["train_labels"])


def test_synthetic_command(tmp_path):
    out = str(tmp_path / "synthetic.json")
    r = run("synthetic", str(tmp_path / "tree"), "--out", out, "--num-ids", "12")
    assert r.returncode == 0, r.stderr
    s = load_split(out)
    t = s["trials"][0]
    assert s["dataset"] == "synthetic" and s["protocol"]["name"] == "market1501"
    assert t["train"] and t["query"] and t["gallery"] and t["multi_query"]
    assert {-1, 0} <= {s["images"][i]["pid"] for i in t["gallery"]}  # junk and distractors kept
