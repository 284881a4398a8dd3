"""The experiments' Snakemake workflow end to end on a small
synthetic Market-layout set, through tools.reproduce: stages shared by two
experiments run once; the same experiments again run nothing; a changed
--scale reruns exactly the training and what reads it, next to the first
stages rather than over them; an interrupted training resumes from its
snapshot, kept outside the outputs Snakemake removes; a failing stage and
bad inputs end in one line naming them."""
import glob
import json
import os
import signal
import subprocess
import sys

import pytest

from common import cli
from common.config import ROOT
from common.records import sha1
from data_prep import synthetic
from tests.helpers import snapshot_iterations, wait_for_snapshot
from tools import reproduce

SID_PV = ["geng16", "table8", "market", "dgdnet", "sid_pv", "scratch"]
SID = ["geng16", "table8", "market", "dgdnet", "sid", "scratch"]
SMALL = ["--k", "2", "--augment", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    synthetic.generate(str(root / "market1501"), num_ids=12, seed=4, quiet=True)
    return str(root)


def _folders(store):
    """{kind/id: mtime} of every stage folder in the store."""
    return {os.path.relpath(p, store): os.stat(p).st_mtime_ns
            for p in glob.glob(os.path.join(store, "*", "*"))
            if os.path.basename(os.path.dirname(p)) not in ("work",)
            and not os.path.basename(p).startswith(".")}


def _kinds(names):
    out = {}
    for name in names:
        out.setdefault(name.split(os.sep)[0], []).append(name)
    return {kind: len(v) for kind, v in out.items()}


def test_shared_stages_once_a_rerun_nothing_and_scale_exactly_its_stages(data, tmp_path, capfd):
    store = str(tmp_path / "runs")
    common = ["--data-root", data, "--run-dir", store] + SMALL
    argv = SID_PV + [","] + SID + common + ["--scale", "0.00004"]
    assert reproduce.main(argv) == 0
    out = capfd.readouterr().out
    # one split and one training LMDB serve both experiments; each trains its own net
    first = _folders(store)
    assert _kinds(first) == {"split": 1, "lmdb": 1, "geng16": 2, "features": 2, "report": 2}
    assert "paper: geng16 Table 8, Market / DGDNet / SID + PV / NO | 82.70" in out
    assert "paper: geng16 Table 8, Market / DGDNet / SID / NO" in out
    (report,) = glob.glob(os.path.join(store, "report", "geng16_table8_market_dgdnet_sid_pv_"
                                                        "scratch-*"))
    pages = [l for l in out.strip().splitlines() if l.startswith("Page: ")]
    assert out.strip().splitlines()[-2:] == pages and len(pages) == 2  # pages last
    assert "Page: %s" % os.path.join(report, "index.html") in pages
    with open(os.path.join(report, "results.json")) as f:
        doc = json.load(f)
    assert [r["name"] for r in doc["results"]] == ["single query", "multi query"]
    assert all(0 <= r["cmc"][0] <= 1 for r in doc["results"])
    # what made it: this command, the split's checksum, its own
    # training's iterations (150K x 0.00004), drawn on its page
    prov = doc["provenance"]
    assert prov["command"]["module"] == "tools.reproduce" and prov["command"]["argv"] == argv
    assert prov["options"]["scale"] == 0.00004
    (split,) = glob.glob(os.path.join(store, "split", "*", "split.json"))
    assert prov["splits"] == {split: sha1(split)}
    ((trained, iters),) = prov["stage_iterations"].items()
    assert trained.startswith("work/geng16/market1501_t0-") and iters == 6
    assert "Training stage %s" % os.path.dirname(trained) in open(
        os.path.join(report, "index.html")).read()

    # the same experiments again, and one of them alone: nothing runs
    assert reproduce.main(argv) == 0
    assert reproduce.main(SID_PV + common + ["--scale", "0.00004"]) == 0
    assert _folders(store) == first
    assert "82.70" in capfd.readouterr().out

    # another --scale: its training, features and report are new stages beside
    # the first ones (left as they were); the split and the LMDB are reused
    assert reproduce.main(SID_PV + common + ["--scale", "0.00008"]) == 0
    now = _folders(store)
    assert {k: now[k] for k in first} == first
    assert _kinds(set(now) - set(first)) == {"geng16": 1, "features": 1, "report": 1}
    (new,) = [k for k in set(now) - set(first) if k.startswith("geng16")]
    with open(os.path.join(store, new, "stage.json")) as f:
        work = json.load(f)["work"]
    with open(os.path.join(store, work, "step2", "state.json")) as f:
        assert json.load(f)["iter"] == 12


def test_an_interrupted_training_resumes_from_its_snapshot(data, tmp_path):
    store = str(tmp_path / "runs")
    # 150K x 0.0002 = 30 iterations, a snapshot every 2
    argv = [sys.executable, "-m", "tools.reproduce"] + SID_PV + [
        "--data-root", data, "--run-dir", store, "--scale", "0.0002", "--snapshot-every", "2"] + SMALL
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_for_snapshot(proc, store, 4)
    # a scheduler's kill (Slurm's at the time limit): the job snapshots, Snakemake stops
    os.killpg(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    ((state, stopped),) = snapshot_iterations(store).items()
    assert 4 <= stopped < 30
    assert glob.glob(os.path.join(store, "geng16", "*")) == []   # no output of a failed job
    snapshots = glob.glob(os.path.join(os.path.dirname(state), "*.solverstate"))
    assert snapshots                                             # kept in work/, outside it
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(state) as f:
        assert json.load(f)["iter"] == 30
    with open(os.path.join(os.path.dirname(state), "train.log")) as f:
        log = f.read()
    # the second run went on from the snapshot, not from iteration 0
    assert log.count("Initializing solver") == 2 and "SGDSolver: restoring history" in log


def test_a_failing_stage_is_one_line_naming_it(tmp_path, capfd):
    (tmp_path / "data" / "market1501").mkdir(parents=True)   # a dataset folder without its images
    argv = SID_PV + ["--data-root", str(tmp_path / "data"), "--run-dir", str(tmp_path / "runs"),
                     "--scale", "0.00004"] + SMALL
    assert cli.run(reproduce.main, argv) == cli.FAILURE
    err = capfd.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the workflow stopped: split/market1501_std-"), err[-1]
    assert "market1501" in err[-1].split("split/market1501_std-", 1)[1]
    # the job's own output went to its log, which the line names, not to the terminal
    log = err[-1].rsplit("(log: ", 1)[1].rstrip(")")
    assert log.startswith(str(tmp_path / "runs" / ".workflow" / "jobs" / "split" / "market1501_std-"))
    with open(log) as f:
        assert f.read().strip().splitlines()[-1].startswith("error: ")
    assert not any(line.startswith("error: ") for line in err[:-1]), err


def test_bad_inputs_are_refused_before_the_workflow(data, tmp_path, capfd):
    runs = tmp_path / "runs"
    missing = SID_PV + ["--data-root", str(tmp_path / "nowhere"), "--run-dir", str(runs)]
    assert cli.run(reproduce.main, missing) == cli.BAD_INPUT
    assert capfd.readouterr().err == "error: dataset folder not found: %s (stage split/%s)\n" % (
        tmp_path / "nowhere" / "market1501", next(
            s.id for s in reproduce.recipes.graph({"experiments": [" ".join(SID_PV)],
                                                   "options": {"data_root": str(
                                                       tmp_path / "nowhere")}}).by_id.values()
            if s.kind == "split"))
    assert not runs.exists()
    imagenet = ["geng16", "table8", "market", "dgdnet", "sid", "imagenet", "--data-root", data,
                "--run-dir", str(runs)]
    assert cli.run(reproduce.main, imagenet) == cli.BAD_INPUT
    assert "no public ImageNet model of DGDNet: give --imagenet" in capfd.readouterr().err
    # a folder this package did not make is never written into
    runs.mkdir()
    (runs / "notes.txt").write_text("mine")
    assert cli.run(reproduce.main, SID_PV + ["--data-root", data, "--run-dir", str(runs)]) == \
        cli.BAD_INPUT
    assert "holds files this package did not make" in capfd.readouterr().err
    assert sorted(os.listdir(runs)) == ["notes.txt"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "experiment.txt").write_text("geng16 table2\n")
    assert cli.run(reproduce.main, SID_PV + ["--data-root", data, "--run-dir", str(old)]) == \
        cli.BAD_INPUT
    assert "run directory of the layout before the workflow" in capfd.readouterr().err
