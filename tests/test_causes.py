"""The decision before a run (experiments/causes.py): each stage reused, or
run for the reasons that name what changed, read from the records the jobs
left in the store; no Caffe runs here."""
import json
import os

from experiments import causes, store as stores
from experiments.arithmetic import arithmetic
from experiments.plan import Builder, Graph


def _graph(tmp_path, size=(8, 4)):
    b = Builder(str(tmp_path / "data"))
    split = b.stage("split", "synthetic", name="s", num_ids=4, seed=0)
    lmdb = b.stage("lmdb", split, "train", size)
    g = Graph({})
    g.add("x", [lmdb])
    return g, split, lmdb


def _complete(store, stage):
    os.makedirs(os.path.join(store, stage.path), exist_ok=True)
    stores.write_record(store, stage, causes.causes(stage, arithmetic({})))


def _reasons(store, g):
    return {d.stage.kind: d.reasons for d in causes.decide(store, g)}


def test_new_reused_code_input_incomplete_and_configuration(tmp_path):
    store = str(tmp_path / "store")
    g, split, lmdb = _graph(tmp_path)
    assert _reasons(store, g) == {"split": [("new", "not made before")],
                                  "lmdb": [("new", "not made before"), ("input", split.path)]}
    _complete(store, split)
    _complete(store, lmdb)
    assert _reasons(store, g) == {"split": [], "lmdb": []}
    assert causes.summary(causes.decide(store, g)) == [
        "2 stage(s): 2 reused, 0 to run (0 training iterations)"]
    # the split was made by other code: it reruns, and the LMDB that reads it
    made = stores.read_record(store, split)
    made["code"]["data_prep/prepare.py"] = "0" * 40
    stores.write_record(store, split, made)
    decisions = causes.decide(store, g)
    assert _reasons(store, g) == {"split": [("code", "data_prep/prepare.py")],
                                  "lmdb": [("input", split.path)]}
    assert causes.summary(decisions) == [
        "2 stage(s): 0 reused, 2 to run (0 training iterations)",
        "  code (data_prep/prepare.py): 1 split", "  input: 1 lmdb"]
    assert causes.describe(decisions[0]) == "run: code (data_prep/prepare.py)"
    _complete(store, split)
    # an LMDB folder its job never finished (killed): made again
    os.remove(stores.record_file(store, lmdb))
    assert _reasons(store, g)["lmdb"] == [("incomplete", "a folder without a record of completion")]
    _complete(store, lmdb)
    # another size is another stage, beside the first: the reason names the setting
    g2, _, lmdb2 = _graph(tmp_path, size=(16, 8))
    assert lmdb2.id != lmdb.id
    assert _reasons(store, g2)["lmdb"] == [("new", "configuration size: [8, 4] → [16, 8]")]


def test_the_arithmetic_of_a_caffe_stage_is_a_cause(tmp_path):
    store = str(tmp_path / "store")
    b = Builder(str(tmp_path / "data"))
    split = b.stage("split", "synthetic", name="s")
    stage = b.stage("features", b.stage("geng16", "g", b.stage("lmdb", split, "train", (160, 64)), None, (0, 1),
                                two_step=False, base="dgdnet"), split, "dgdnet", ["query"])
    g = Graph({"blas_threads": 2})
    g.add("x", [stage])
    for s in stage.stages():
        os.makedirs(os.path.join(store, s.path))
        stores.write_record(store, s, causes.causes(s, arithmetic({})))
    reasons = _reasons(store, g)
    assert reasons["split"] == [] and reasons["lmdb"] == []   # no Caffe: no arithmetic
    assert reasons["geng16"] == [("arithmetic", 'OPENBLAS_NUM_THREADS: "1" → "2"')]
    with open(stores.record_file(store, stage)) as f:
        assert json.load(f)["caffe"]["key"]     # the Caffe build is one of a Caffe stage's causes
