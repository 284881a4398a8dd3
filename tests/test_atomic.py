"""common/atomic.py on its own: a folder the package did
not make is never replaced, one of ours is, a file a user added to one of
ours stops its replacement, temporaries of dead runs are cleaned while a
live run's are kept, and reuse names the record field that differs."""
import json
import os
import re
import subprocess
import sys

import pytest

from common import atomic
from common.atomic import NotOurs, Stale, atomic_path, reuse


def snapshot(folder):
    """{relative path: bytes, or None for a folder} of everything under folder."""
    out = {}
    for d, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), folder)] = None
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.relpath(os.path.join(d, name), folder)] = f.read()
    return out


def user_folder(path):
    os.makedirs(os.path.join(path, "sub"))
    with open(os.path.join(path, "notes.txt"), "wb") as f:
        f.write(b"my notes\n")
    with open(os.path.join(path, "sub", "data.bin"), "wb") as f:
        f.write(bytes(range(256)))
    return snapshot(path)


def make(path, text, kind="thing", record=None):
    with atomic_path(path, is_dir=True, kind=kind, record=record) as tmp:
        with open(os.path.join(tmp, "out.txt"), "w") as f:
            f.write(text)


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_users_folder_is_refused_and_kept(tmp_path):
    out = str(tmp_path / "out")
    before = user_folder(out)
    with pytest.raises(NotOurs, match=re.escape("refusing to replace %s: an existing folder" % out)):
        make(out, "new")
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no temporary left either
    # a file where a folder would go is not replaced either
    with open(str(tmp_path / "file"), "w") as f:
        f.write("mine")
    with pytest.raises(NotOurs, match="an existing file"):
        make(str(tmp_path / "file"), "new")
    assert open(str(tmp_path / "file")).read() == "mine"


def test_our_folder_is_replaced_and_an_empty_one_used(tmp_path):
    out = str(tmp_path / "out")
    make(out, "first", record={"n": 1})
    make(out, "second", record={"n": 2})
    assert open(os.path.join(out, "out.txt")).read() == "second"
    marker = atomic.read_marker(out)
    assert marker["kind"] == "thing" and marker["record"] == {"n": 2}
    assert marker["contents"] == ["out.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]
    empty = str(tmp_path / "empty")
    os.makedirs(empty)  # nothing in it to lose
    make(empty, "x")
    assert open(os.path.join(empty, "out.txt")).read() == "x"


def test_a_file_added_to_our_folder_stops_its_replacement(tmp_path):
    out = str(tmp_path / "out")
    make(out, "first")
    os.makedirs(os.path.join(out, "mine"))
    with open(os.path.join(out, "mine", "keep.txt"), "w") as f:
        f.write("keep me")
    before = snapshot(out)
    with pytest.raises(NotOurs, match=re.escape("it holds %s, which this package did not make"
                                       % os.path.join(out, "mine"))):
        make(out, "second")
    assert snapshot(out) == before


def test_another_kind_is_not_replaced(tmp_path):
    out = str(tmp_path / "out")
    make(out, "an lmdb", kind="reid-lmdb")
    with pytest.raises(NotOurs, match="it holds a reid-lmdb, not a synthetic"):
        make(out, "a tree", kind="synthetic")
    assert open(os.path.join(out, "out.txt")).read() == "an lmdb"


def test_failed_write_leaves_the_old_output(tmp_path):
    out = str(tmp_path / "out")
    make(out, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(out, is_dir=True, kind="thing") as tmp:
            open(os.path.join(tmp, "out.txt"), "w").close()
            raise RuntimeError("killed")
    assert open(os.path.join(out, "out.txt")).read() == "first"
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_stale_temporaries_of_dead_runs_are_cleaned(tmp_path):
    out = str(tmp_path / "x.lmdb")
    dead = str(tmp_path / (".x.lmdb.tmp-%d-abc123" % dead_pid()))
    os.makedirs(dead)
    with open(os.path.join(dead, "data.mdb"), "wb") as f:
        f.write(b"\0" * 4096)                         # a killed build's half LMDB
    live = str(tmp_path / (".x.lmdb.tmp-%d-def456" % os.getppid()))  # a run still going
    os.makedirs(live)
    dead_file = str(tmp_path / (".w.caffemodel.tmp-%d-zz" % dead_pid()))  # a killed download
    open(dead_file, "wb").close()
    other = str(tmp_path / ".y.lmdb.tmp-1-abc")        # another output's: not this one's business
    open(other, "w").close()
    make(out, "built")
    assert not os.path.exists(dead) and os.path.isdir(live) and os.path.exists(other)
    with atomic_path(str(tmp_path / "w.caffemodel")) as tmp:
        open(tmp, "w").close()
    assert not os.path.exists(dead_file)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["x.lmdb", "w.caffemodel", os.path.basename(live), os.path.basename(other)])


def test_reuse_names_the_differing_field(tmp_path):
    out = str(tmp_path / "out")
    record = {"split_sha1": "aa", "trial": 0, "size": [8, 4]}
    assert reuse(out, record) is False                 # absent: make it
    make(out, "x", record=record)
    assert reuse(out, dict(record)) is True
    assert reuse(out, json.loads(json.dumps(record)), kind="thing") is True
    with pytest.raises(Stale, match=re.escape("%s was made with trial = 0, this run has 1: rerun with "
                                              "--recompute" % out)):
        reuse(out, dict(record, trial=1))
    with pytest.raises(Stale, match=r"size = \[8, 4\], this run has \[16, 8\]"):
        reuse(out, dict(record, size=[16, 8]))
    assert reuse(out, dict(record, trial=1), recompute=True) is False
    with open(os.path.join(out, "added.txt"), "w") as f:
        f.write("a user's")
    killed = str(tmp_path / (".out.tmp-%d-k1" % dead_pid()))  # a killed --recompute of it
    os.makedirs(killed)
    assert reuse(out, record) is True                  # reusing deletes nothing of the user's
    assert os.path.isfile(os.path.join(out, "added.txt")) and not os.path.exists(killed)
    mine = str(tmp_path / "mine")
    user_folder(mine)
    with pytest.raises(NotOurs, match=re.escape("refusing to replace %s" % mine)):
        reuse(mine, record, recompute=True)
