"""Reports: the papers' tables as data, results.json / Markdown /
CMC PNG, and `python -m tools.evaluate` end to end on a features file."""
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from common.version import VERSION
from data_prep.split_format import save_split
from evaluation.evaluate import command_line, report
from tools import evaluate
from evaluation import papers
from evaluation.distance import euclidean
from evaluation.market import evaluate_market
from evaluation.multi_query import pool_features
from evaluation.report import markdown, summary, write_report
from evaluation.features import ExtractError, save_features


def test_paper_tables_are_complete_and_looked_up_by_row():
    doc = papers.load()
    geng = doc["papers"]["geng16"]["tables"]
    assert sorted(geng) == ["table%d" % i for i in range(1, 10)]
    assert list(doc["papers"]["mtdnet"]["tables"]) == ["table1"]
    for paper in doc["papers"].values():
        for table in paper["tables"].values():
            for row, values in table["rows"].items():
                assert len(values) == len(table["columns"]), row
    # Numbers as printed (Geng16 Table 2 "Ours"; MTDnet Table 1; Geng16 Table 6).
    assert papers.lookup("geng16:table2:Ours:single_query")["values"] == {"r1": 83.7, "mAP": 65.5}
    assert papers.lookup("geng16:table2:ours:multi_query")["values"] == {"r1": 89.6, "mAP": 73.8}
    assert papers.lookup("mtdnet:table1:MTDnet:cuhk03")["values"] == {"r1": 74.68, "r5": 95.99, "r10": 97.47}
    assert papers.lookup("mtdnet:table1:MTDnet-cross:prid2011")["values"] == {"r1": 31.0, "r5": 54.0, "r10": 61.0}
    assert papers.lookup("mtdnet:table1:MTDnet-aug:cuhk03")["values"]["r1"] is None
    assert papers.lookup("geng16:table6:Two-stepped")["values"] == {"r1": 56.3, "r5": 83.3, "r10": 90.5, "r20": 96.0}
    assert papers.lookup("geng16:table3:Ours:cuhk01_485")["values"] == {"r1": 77.0}
    assert papers.lookup("geng16:table8:Market / GoogLeNet / SID + PV / YES")["values"] == {"r1": 83.7, "mAP": 65.5}
    with pytest.raises(KeyError, match="needs a setting"):
        papers.lookup("geng16:table2:Ours")
    with pytest.raises(KeyError, match="no row 'Theirs'"):
        papers.lookup("geng16:table2:Theirs:single_query")


def _rows():
    cmc = np.linspace(0.6, 1.0, 30)   # rank r: 0.6 + (r - 1)·0.4/29
    return [{"name": "single query", "cmc": cmc, "mAP": 0.5, "trials": 1,
             "paper": papers.lookup("geng16:table2:Ours:single_query")},
            {"name": "single shot", "cmc": np.array([0.25, 0.5, 0.75]), "mAP": None, "trials": 3,
             "cmc_std": np.array([0.01, 0.02, 0.0])}]


def test_markdown_puts_paper_row_beside_ours():
    text = markdown(_rows(), "demo")
    lines = text.splitlines()
    ours = lines.index(next(l for l in lines if l.startswith("| single query")))
    assert lines[ours] == "| single query | 60.00 | 65.52 | 72.41 | 86.21 | 50.00 |"
    assert lines[ours + 1] == "| paper: geng16 Table 2, Ours, single query | 83.70 | – | – | – | 65.50 |"
    # Mean ± std over trials; ranks past the curve are "–".
    assert "| single shot (mean of 3 trials) | 25.00 ± 1.00 | – | – | – | – |" in lines
    assert summary(_rows()[1])["r5"] is None


def test_write_report_files(tmp_path):
    paths = write_report(str(tmp_path / "rep"), _rows(), "demo", meta={"protocol": "market"})
    doc = json.load(open(paths["results.json"]))
    assert doc["meta"] == {"protocol": "market"}
    first = doc["results"][0]
    assert first["summary"]["r1"] == pytest.approx(60.0) and first["mAP"] == 0.5
    assert first["paper"]["values"] == {"r1": 83.7, "mAP": 65.5}
    assert open(paths["results.md"]).read() == markdown(_rows(), "demo", doc["provenance"])
    with Image.open(paths["cmc.png"]) as im:
        assert im.format == "PNG" and im.size == (600, 450)
    assert sorted(os.listdir(tmp_path / "rep")) == ["cmc.png", "index.html", "results.json", "results.md"]


def _market_fixture(tmp_path):
    """A split with 4 queries, a gallery with junk and distractors, and gt_bbox
    pools; random features saved as evaluation/features.py writes them."""
    rng = np.random.default_rng(0)
    images = []

    def add(pid, cam, folder):
        images.append({"path": "%s/%04d_c%d_%d.jpg" % (folder, pid, cam, len(images)), "pid": pid,
                       "cam": cam, "set": folder})
        return len(images) - 1

    query = [add(p, c, "query") for p, c in [(1, 1), (2, 2), (3, 1), (4, 3)]]
    gallery = [add(p, c, "bounding_box_test") for p, c in
               [(1, 2), (1, 1), (2, 1), (2, 3), (3, 2), (4, 1), (-1, 1), (0, 2), (5, 2), (3, 1)]]
    gt = [add(p, c, "gt_bbox") for p, c in [(1, 1), (1, 1), (2, 2), (4, 3)]]
    pools = {str(query[0]): [query[0], gt[0], gt[1]], str(query[1]): [query[1], gt[2]],
             str(query[2]): [query[2]], str(query[3]): [query[3], gt[3]]}
    split = {"format": "reid-split/1", "dataset": "market1501", "root": str(tmp_path), "images": images,
             "trials": [{"name": "trial00", "train": [], "train_labels": [], "val": [], "query": query,
                         "gallery": gallery, "multi_query": pools}], "protocol": {}, "seed": 0}
    split_path = str(tmp_path / "split.json")
    save_split(split, split_path)
    feats = rng.standard_normal((len(images), 6)).astype(np.float32)
    mq = sorted({i for v in pools.values() for i in v})

    def subset(idx):
        return {"features": feats[idx], "pids": np.array([images[i]["pid"] for i in idx]),
                "cams": np.array([images[i]["cam"] for i in idx]), "index": np.array(idx)}

    path = str(tmp_path / "feats.npz")
    save_features(path, {"query": subset(query), "gallery": subset(gallery), "multi_query": subset(mq)},
                  {"split": split_path, "trial": 0})
    return path, split, feats, query, gallery, pools


def test_evaluate_command_market_single_and_multi_query(tmp_path):
    path, split, feats, query, gallery, pools = _market_fixture(tmp_path)
    out = str(tmp_path / "report")
    evaluate.main(["--features", path, "--protocol", "market", "--paper", "geng16:table2:Ours",
                   "--out", out])
    doc = json.load(open(os.path.join(out, "results.json")))
    sq, mq = doc["results"]
    q_p = [split["images"][i]["pid"] for i in query]
    q_c = [split["images"][i]["cam"] for i in query]
    g_p = [split["images"][i]["pid"] for i in gallery]
    g_c = [split["images"][i]["cam"] for i in gallery]
    want = evaluate_market(euclidean(feats[query], feats[gallery]), q_p, q_c, g_p, g_c)
    assert sq["name"] == "single query" and sq["mAP"] == want["mAP"]
    assert sq["cmc"] == list(want["cmc"])
    assert sq["paper"]["setting"] == "single_query"
    pooled = pool_features(feats, np.arange(len(feats)), pools, query)
    want = evaluate_market(euclidean(pooled, feats[gallery]), q_p, q_c, g_p, g_c)
    assert mq["name"] == "multi query" and mq["mAP"] == want["mAP"]
    assert mq["paper"]["values"] == {"r1": 89.6, "mAP": 73.8}
    md = open(os.path.join(out, "results.md")).read()
    assert "| paper: geng16 Table 2, Ours, multi query | 89.60 | – | – | – | 73.80 |" in md


def test_evaluate_command_averages_trials_and_takes_score_matrices(tmp_path):
    path, split, feats, query, gallery, pools = _market_fixture(tmp_path)
    out = str(tmp_path / "ss")
    evaluate.main(["--features", path, path, "--protocol", "single-shot", "--out", out, "--repeats", "3"])
    doc = json.load(open(os.path.join(out, "results.json")))
    (row,) = doc["results"]
    assert row["trials"] == 2 and row["cmc_std"][0] == 0.0   # the same file twice
    scores = str(tmp_path / "scores.npz")
    q = [split["images"][i] for i in query]
    g = [split["images"][i] for i in gallery]
    np.savez(scores, scores=-euclidean(feats[query], feats[gallery]),
             q_pids=[i["pid"] for i in q], q_cams=[i["cam"] for i in q],
             g_pids=[i["pid"] for i in g], g_cams=[i["cam"] for i in g])
    out2 = str(tmp_path / "mat")
    evaluate.main(["--matrix", scores, "--similarity", "--protocol", "single-shot", "--out", out2,
                   "--repeats", "3"])
    assert json.load(open(os.path.join(out2, "results.json")))["results"][0]["cmc"] == row["cmc"]
    # A library call (steps/stages.py's) raises; only the entry point exits.
    with pytest.raises(KeyError, match="no row 'Nobody'"):
        report(out2, "single-shot", matrix=scores, paper="mtdnet:table1:Nobody:cuhk03")


def test_evaluate_records_its_command_options_and_split(tmp_path):
    path, split, feats, query, gallery, pools = _market_fixture(tmp_path)
    argv = ["--features", path, "--protocol", "market", "--seed", "3", "--out", str(tmp_path / "r")]
    paths = evaluate.run(argv)
    with open(paths["results.json"]) as f:
        doc = json.load(f)["provenance"]
    assert doc["command"]["module"] == "tools.evaluate" and doc["command"]["argv"] == argv
    assert doc["options"]["seed"] == 3 and doc["options"]["protocol"] == "market"
    assert doc["options"]["features"] == [path] and "step" not in doc
    assert doc["package"]["version"] == VERSION
    split_path = str(tmp_path / "split.json")  # the features' own split (their meta)
    with open(split_path, "rb") as f:
        assert doc["splits"] == {split_path: hashlib.sha1(f.read()).hexdigest()}
    assert "Made by: `" in open(paths["results.md"]).read()
    assert "Code: reid-caffe %s, git " % VERSION in open(paths["results.md"]).read()
    # The library call records the same evaluation as the command line that asks for it
    # (its step, when it runs inside tools.reproduce), defaults left out.
    out = str(tmp_path / "lib")
    paths = report(out, "market", features=[path], seed=3, title="t")
    with open(paths["results.json"]) as f:
        doc = json.load(f)["provenance"]
    assert doc["command"]["module"] == "tools.evaluate"
    assert doc["command"]["argv"] == ["--features", path, "--protocol", "market", "--title", "t",
                                      "--seed", "3", "--out", out]
    assert doc["command"]["argv"][:-2] == command_line("market", features=[path], seed=3, title="t")
    assert doc["options"]["seed"] == 3 and doc["options"]["features"] == [path]
    with pytest.raises(ValueError, match="give features .* or a matrix, not neither"):
        report(out, "market")
    with pytest.raises(ValueError, match="protocol must be one of"):
        report(out, "cuhk", features=[path])


def test_no_valid_query_is_a_warning_not_zero(tmp_path, capsys):
    """Queries none of which has a match in the gallery: the report says so
    (and stderr), instead of a measured-looking 0.00."""
    empty = {"features": np.zeros((2, 3), np.float32), "pids": np.array([7, 8]),
             "cams": np.array([1, 1]), "index": np.array([0, 1])}
    gallery = {"features": np.ones((3, 3), np.float32), "pids": np.array([1, 2, 7]),
               "cams": np.array([2, 2, 1]), "index": np.array([2, 3, 4])}  # 7 only in its own camera
    path = str(tmp_path / "f.npz")
    save_features(path, {"query": empty, "gallery": gallery}, {})
    for protocol in ("market", "single-shot"):
        out = str(tmp_path / protocol)
        report(out, protocol, features=[path], repeats=2)
        err = capsys.readouterr().err
        assert "warning: single %s: no valid query (none of the 2 queries" % (
            "query" if protocol == "market" else "shot") in err
        md = open(os.path.join(out, "results.md")).read()
        row = next(l for l in md.splitlines() if l.startswith("| single"))
        assert "0.00" not in row and row.count("–") == 5
        assert "Warning: single" in md
        (res,) = json.load(open(os.path.join(out, "results.json")))["results"]
        assert res["num_valid"] == 0 and "no valid query" in res["warning"]
        assert all(v is None for v in res["summary"].values())
    # Two trials, one without a valid query: numbers shown, with the warning.
    ok = str(tmp_path / "ok.npz")
    save_features(ok, {"query": dict(empty, pids=np.array([1, 2])), "gallery": gallery}, {})
    out = str(tmp_path / "two")
    report(out, "market", features=[ok, path])
    assert "trial(s) 1 had no valid query" in capsys.readouterr().err
    (res,) = json.load(open(os.path.join(out, "results.json")))["results"]
    assert res["summary"]["r1"] is not None and "trial(s) 1" in res["warning"]


def test_evaluate_refuses_an_npy_and_an_out_that_is_a_file(tmp_path):
    npy = str(tmp_path / "f.npy")
    np.save(npy, np.zeros((2, 2)))
    with pytest.raises(ExtractError, match="f.npy: a single array"):
        report(str(tmp_path / "r"), "market", features=[npy])
    with pytest.raises(ValueError, match="f.npy: a single array"):
        report(str(tmp_path / "r"), "market", matrix=npy)
    path = _market_fixture(tmp_path)[0]
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    with pytest.raises(NotADirectoryError, match="taken is an existing file"):
        report(str(taken), "market", features=[path])
    assert taken.read_text() == "mine\n"
