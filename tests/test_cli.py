"""One error convention for every `python -m …` entry point (common/cli.py):
on bad input the last stderr line is `error: …`, there is no traceback, the
exit status is 2; with --debug the traceback is shown too.

Every module of the package with a `__main__` block must have a case here
(a new entry point without one fails the first test). Each case runs in a
process of its own, as `python -m MODULE ARGS` runs it (runpy, sys.argv,
stderr, exit status), forked from one interpreter that has imported the
heavy third-party libraries once: 34 cold starts would take over a minute
on two cores. One case also runs cold, to check the two agree.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from common.version import VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("bench", "caffe_build", "common", "data_prep", "evaluation", "experiments", "layers",
            "networks", "tools", "training", "unsupervised")


def entry_points():
    """Module names of the package's files with a `__main__` block."""
    found = set()
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(folder, name)) as f:
                    if not re.search(r'^if __name__ == "__main__":', f.read(), re.M):
                        continue
                module = os.path.relpath(os.path.join(folder, name[:-3]), ROOT).replace(os.sep, ".")
                found.add(module[:-len(".__main__")] if module.endswith(".__main__") else module)
    return found


def cases(tmp):
    """(case id, module, argv of a bad input) per entry point."""
    a_file = os.path.join(tmp, "a_file")
    missing = os.path.join(tmp, "missing")
    out = os.path.join(tmp, "out")
    npy = os.path.join(tmp, "features.npy")
    return [
        ("reproduce", "tools.reproduce", ["geng16", "no", "such", "row"]),
        ("stage", "tools.stage", ["geng16", "no-such-stage", "--config", missing]),
        ("demo", "tools.demo", ["--run-dir", a_file]),
        ("evaluate_npy", "tools.evaluate", ["--features", npy, "--protocol", "market", "--out", out]),
        ("evaluate_out_is_file", "tools.evaluate", ["--matrix", os.path.join(tmp, "scores.npz"),
                                                    "--protocol", "single-shot", "--out", a_file]),
        ("extract_features", "tools.extract_features",
         ["--deploy", missing, "--weights", missing, "--split", missing, "--out", out]),
        ("fetch_weights", "tools.fetch_weights", ["--dest", a_file]),
        ("draw_nets", "tools.draw_nets", ["no_such_family", "--out", out]),
        ("notebooks", "tools.notebooks", [missing]),
        ("bench", "bench", ["no_such_benchmark"]),
        ("fatbin_archs", "tools.fatbin_archs", [missing]),
        ("gpu_kit", "bench.gpu_kit", [missing, out]),
        ("gpu_check", "bench.gpu_check", [a_file, "--cpu"]),
        ("netgen_geng16", "tools.netgen", ["geng16", "--out", a_file]),
        ("netgen_mtdnet", "tools.netgen", ["mtdnet", "--out", a_file]),
        ("netgen_unsupervised", "tools.netgen", ["unsupervised", "--out", a_file]),
        ("train", "tools.train", ["--solver", missing, "--run-dir", out]),
        ("surgery", "tools.surgery", ["--net", missing, "--weights", missing, "--out", out]),
        ("mtdnet_cir", "tools.mtdnet_cir", ["--weights", missing, "--query", missing,
                                            "--gallery", missing, "--out", out]),
        ("mtdnet_init", "tools.mtdnet_init", ["--net", missing, "--caffenet", missing, "--out", out]),
        ("data_prep", "data_prep", ["market1501", missing, "--out", out + ".json"]),
        ("quick_check", "tools.quick_check", ["cuhk01", missing, "--run-dir", out]),
    ]


CASE_IDS = [c[0] for c in cases("/tmp")]


# Run by a fresh interpreter: import the heavy libraries, then fork one child
# per job, which runs the module as `python -m` does and exits with its status.
DRIVER = r"""
import json, os, runpy, sys, traceback
import numpy, scipy, skimage, matplotlib.figure, lmdb, PIL.Image, google.protobuf, caffe
jobs, out = json.loads(sys.argv[1]), {}
for n, (module, argv) in enumerate(jobs):
    err, std = (os.path.join(sys.argv[2], "%s.%d" % (s, n)) for s in ("stderr", "stdout"))
    pid = os.fork()
    if pid == 0:
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        os.dup2(os.open(std, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
        sys.argv = [module] + argv
        code = 0
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code
            if not isinstance(code, int):
                code = 0 if code is None else (sys.stderr.write("%s\n" % code) and 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    with open(err) as f, open(std) as g:
        out[n] = [os.waitstatus_to_exitcode(status), f.read(), g.read()]
print(json.dumps(out))
"""


def _env():
    return dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=ROOT)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the inputs the cases name."""
    tmp = str(tmp_path_factory.mktemp("cli"))
    with open(os.path.join(tmp, "a_file"), "w") as f:
        f.write("not a folder\n")
    np.save(os.path.join(tmp, "features.npy"), np.zeros((3, 2), np.float32))
    np.savez(os.path.join(tmp, "scores.npz"), scores=np.eye(2), q_pids=[1, 2], q_cams=[1, 1],
             g_pids=[1, 2], g_cams=[2, 2])
    return tmp


def _drive(jobs, workdir):
    """[exit status, stderr, stdout] of each job [module, argv], forked."""
    res = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(jobs), workdir], cwd=workdir,
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return [out[str(n)] for n in range(len(jobs))]


@pytest.fixture(scope="module")
def results(workdir):
    """{(case id, debug): (exit status, stderr)} of every case, with and
    without --debug."""
    keys, jobs = [], []
    for cid, module, argv in cases(workdir):
        for debug in (False, True):
            keys.append((cid, debug))
            jobs.append([module, argv + (["--debug"] if debug else [])])
    return {key: tuple(out[:2]) for key, out in zip(keys, _drive(jobs, workdir))}


@pytest.fixture(scope="module")
def versions(workdir):
    """{module: (exit status, stderr, stdout)} of `python -m MODULE --version`."""
    modules = sorted(entry_points())
    return {m: tuple(out) for m, out in zip(modules, _drive([[m, ["--version"]] for m in modules],
                                                            workdir))}


def test_every_entry_point_has_a_case():
    assert entry_points() == {c[1] for c in cases("/tmp")}


@pytest.mark.parametrize("cid", CASE_IDS)
def test_bad_input_is_one_error_line_and_status_2(results, cid):
    status, err = results[(cid, False)]
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err, err
    assert status == 2, (status, err)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_debug_shows_the_traceback(results, cid):
    status, err = results[(cid, True)]
    assert "Traceback (most recent call last)" in err, err
    assert err.strip().splitlines()[-1].startswith("error: "), err
    assert status == 2, (status, err)


def test_messages_name_the_file(results):
    """The line says what is wrong and where, not only an exception's name."""
    assert "features.npy" in results[("evaluate_npy", False)][1]
    assert "a single array (.npy)" in results[("evaluate_npy", False)][1]
    assert "a_file is an existing file" in results[("evaluate_out_is_file", False)][1]
    assert "a_file is an existing file" in results[("demo", False)][1]
    assert "a_file is an existing file" in results[("fetch_weights", False)][1]
    assert "unknown experiment 'geng16 no such row'" in results[("reproduce", False)][1]
    assert "no_such_family" in results[("draw_nets", False)][1]
    assert "no_such_benchmark" in results[("bench", False)][1]
    assert "missing/manifest.json: no GPU kit here" in results[("gpu_kit", False)][1]
    assert "a_file is an existing file" in results[("gpu_check", False)][1]


def test_a_cold_start_agrees_with_the_forked_run(results, workdir):
    """The forked runs stand for `python -m`: one case run cold matches."""
    (cid, module, argv), = [c for c in cases(workdir) if c[0] == "evaluate_npy"]
    for debug in (False, True):
        res = subprocess.run([sys.executable, "-m", module] + argv + (["--debug"] if debug else []),
                             cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300)
        status, err = results[(cid, debug)]
        assert res.returncode == status
        assert res.stderr.strip().splitlines()[-1] == err.strip().splitlines()[-1]
        assert ("Traceback" in res.stderr) == ("Traceback" in err) == debug


@pytest.mark.parametrize("module", sorted(entry_points()))
def test_every_entry_point_answers_version(versions, module):
    """`--version` prints the package's version (common/version.py) and
    exits 0 on every command, data_prep's and quick_check's included, whose
    own --version takes CUHK03's labeled|detected (common.cli.VersionOr)."""
    status, err, out = versions[module]
    assert (status, out) == (0, "reid-caffe %s\n" % VERSION), err


def test_version_cold(workdir):
    """Two commands run cold, as a user runs them, say the same."""
    for module in ("tools.reproduce", "data_prep"):
        res = subprocess.run([sys.executable, "-m", module, "--version"], cwd=workdir, env=_env(),
                             capture_output=True, text=True, timeout=300)
        assert (res.returncode, res.stdout) == (0, "reid-caffe %s\n" % VERSION), res.stderr
    # the value of data_prep's own --version is still CUHK03's images
    res = subprocess.run([sys.executable, "-m", "data_prep", "cuhk03", "x", "--out", "s.json",
                          "--version", "both"], cwd=workdir, env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2 and "invalid choice: 'both'" in res.stderr, res.stderr
