"""The workflow on a real Slurm: cluster/slurm_local.sh starts
Debian's slurm-wlm and munge as a one-node cluster on 127.0.0.1; a small
experiment runs end to end through snakemake-executor-plugin-slurm, each
stage a Slurm job, and the cluster is stopped after. Needs root (to
install the packages, as CI is) or slurm-wlm and munge installed."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from common.config import ROOT
from data_prep import synthetic
from experiments import workflow
from tools import reproduce

SCRIPT = os.path.join(ROOT, "cluster", "slurm_local.sh")
EXPERIMENT = ["geng16", "table8", "market", "dgdnet", "sid_pv", "scratch"]


def _can_run():
    have = all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged"))
    return have or (os.geteuid() == 0 and shutil.which("apt-get"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not _can_run():
        pytest.skip("needs root and apt-get, or slurm-wlm and munge installed")
    if os.path.exists("/etc/slurm/slurm.conf") and not open(
            "/etc/slurm/slurm.conf").readline().startswith("# made by cluster/slurm_local.sh"):
        pytest.skip("a Slurm is configured on this machine already (/etc/slurm/slurm.conf)")
    state = str(tmp_path_factory.mktemp("slurm"))
    subprocess.run(["bash", SCRIPT, "start", state], check=True, timeout=900)
    try:
        yield state
    finally:
        subprocess.run(["bash", SCRIPT, "stop", state], check=True, timeout=60)


def test_an_experiment_runs_as_slurm_jobs(cluster, tmp_path, capsys):
    synthetic.generate(str(tmp_path / "data" / "market1501"), num_ids=12, seed=4, quiet=True)
    store = tmp_path / "runs"
    argv = EXPERIMENT + ["--data-root", str(tmp_path / "data"), "--run-dir", str(store),
                         "--scale", "0.00004", "--k", "2", "--augment", "0",
                         "--executor", "slurm", "--jobs", "2",
                         # no slurmdbd here: follow jobs with squeue, and submit without an account
                         "--slurm", "status_command=squeue", "--slurm", "no_account=true",
                         "--slurm", "init_seconds_before_status_checks=1"]
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert "paper: geng16 Table 8, Market / DGDNet / SID + PV / NO | 82.70" in out
    (report,) = glob.glob(str(store / "report" / "geng16_table8_market_dgdnet_sid_pv_scratch-*"))
    with open(os.path.join(report, "results.json")) as f:
        assert all(0 <= r["cmc"][0] <= 1 for r in json.load(f)["results"])
    # each stage was a Slurm job, and each completed: Slurm keeps finished jobs
    # listed (MinJobAge), their comment naming the rule
    lines = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%k|%T"], capture_output=True,
                           text=True, check=True).stdout.split()
    done = {line.split("|")[0].split("_wildcards_")[0] for line in lines
            if line.endswith("|COMPLETED")}
    assert {"rule_split", "rule_lmdb", "rule_geng16", "rule_features", "rule_report"} <= done, lines


def test_jobs_start_the_python_on_their_path_without_software_deployment(
        cluster, tmp_path, monkeypatch):
    """A profile whose shared-fs-usage leaves out software-deployment: each
    Slurm job starts Snakemake with the `python` its node finds on PATH, the
    hook through which a wrapper runs it inside an Apptainer image
    (docs/containers.md); here a wrapper that notes each call."""
    synthetic.generate(str(tmp_path / "data" / "market1501"), num_ids=12, seed=4, quiet=True)
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (calls, sys.executable))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (wrapper.parent, os.environ["PATH"]))
    profile = tmp_path / "profile" / "config.yaml"
    profile.parent.mkdir()
    profile.write_text(
        "executor: slurm\njobs: 2\nlatency-wait: 5\n"
        "slurm-status-command: squeue\nslurm-no-account: true\n"
        "slurm-init-seconds-before-status-checks: 1\n"
        "shared-fs-usage: [persistence, input-output, sources, source-cache, storage-local-copies]\n")
    store = tmp_path / "runs"
    argv = EXPERIMENT + ["--data-root", str(tmp_path / "data"), "--run-dir", str(store),
                         "--scale", "0.00004", "--k", "2", "--augment", "0",
                         "--profile", str(profile.parent)]
    assert reproduce.main(argv) == 0
    started = [line for line in calls.read_text().splitlines() if line.startswith("-m snakemake ")]
    stages = glob.glob(str(store / "*" / "*-*"))
    assert len(started) == len(stages) >= 5, (started, stages)


def test_an_unknown_shared_fs_usage_is_refused(tmp_path):
    profile = tmp_path / "config.yaml"
    profile.write_text("executor: slurm\nshared-fs-usage: [input-output, software]\n")
    with pytest.raises(ValueError, match=r"config.yaml: shared-fs-usage: unknown software \(expected"):
        workflow.load_profile(str(profile))
