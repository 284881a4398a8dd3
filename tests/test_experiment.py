"""steps/stages.py's MTDnet stages on a tiny synthetic set: a training
stage from generated text, then CIR and -trp reports that share one scoring
run of the model; outputs made from other inputs refused or
recomputed."""
import json
import os

import pytest

from common import caffe_env
from common.atomic import Stale
from steps import stages as ex
from networks.mtdnet import LMDB_SIZE as MTDNET_LMDB


def test_mtdnet_stage_and_tests_share_one_scoring_run(tmp_path):
    caffe_env.set_mode(None)
    ctx = ex.Context(str(tmp_path), seed=1, progress=False)
    split = ex.split(ctx, "synthetic", root=str(tmp_path / "syn"), name="syn", num_ids=8, seed=2)
    weights = ex.mtdnet(ctx, "mt", "mtdnet", ex.lmdb(ctx, split, "train", MTDNET_LMDB), 2,
                        size=64, batch=2)
    assert weights == ctx.path("mt", "final.caffemodel") and os.path.isfile(weights)
    assert os.path.isfile(ctx.path("mt", ex.NET)) and not os.path.exists(ctx.path("mt", ex.INIT))
    shot = ex.single_shot(ctx, split, "syn_single_shot")
    query, gallery = ex.lmdb(ctx, shot, "query", MTDNET_LMDB), ex.lmdb(ctx, shot, "gallery",
                                                                           MTDNET_LMDB)
    reports = [ex.evaluate_mtdnet(ctx, "eval_" + test, weights, query, gallery, test, size=64,
                                  passes=1) for test in ("cir", "trp")]
    scores = [f for f in os.listdir(ctx.path("mt")) if f.endswith(".scores.npz")]
    assert len(scores) == 1
    for report in reports:
        with open(os.path.join(report, "results.json")) as f:
            assert 0 <= json.load(f)["results"][0]["cmc"][0] <= 1


def test_stages_refuse_outputs_made_otherwise_and_recompute_when_asked(tmp_path):
    """A finished stage, its scores and its report are reused
    for the same inputs only; other inputs are refused naming the first
    difference, and `recompute` remakes the chain."""
    caffe_env.set_mode(None)
    ctx = ex.Context(str(tmp_path), seed=1, progress=False)
    split = ex.split(ctx, "synthetic", root=str(tmp_path / "syn"), name="syn", num_ids=6, seed=2)
    train = ex.lmdb(ctx, split, "train", MTDNET_LMDB)
    shot = ex.single_shot(ctx, split, "shot")
    query, gallery = (ex.lmdb(ctx, shot, s, MTDNET_LMDB) for s in ("query", "gallery"))

    def stage(iters):
        return ex.mtdnet(ctx, "mt", "mtdnet", train, iters, size=64, batch=2)

    def report():
        return ex.evaluate_mtdnet(ctx, "eval", weights, query, gallery, "trp", size=64, passes=1)

    weights = stage(2)
    out = report()
    results = os.path.join(out, "results.json")
    made = os.path.getmtime(results)
    assert stage(2) == weights and report() == out and os.path.getmtime(results) == made
    # (the generated solver's display interval follows the iterations, before max_iter)
    with pytest.raises(Stale, match=r'mt was made with solver line \d+ = "display: 2", this run '
                                    r'has "display: 3"'):
        stage(3)
    ctx.recompute = True
    assert stage(3) == weights
    ctx.recompute = False
    # the weights changed under the same path: their scores and report are stale
    with pytest.raises(Stale, match=r"scores.npz was made with weights = "):
        report()
    ctx.recompute = True
    report()
    ctx.recompute = False
    assert os.path.getmtime(results) != made
    assert report() == out


def test_features_are_extracted_again_only_when_asked(tmp_path):
    """Features record the weights they came from."""
    import caffe
    from networks import geng16
    caffe_env.set_mode(None)
    ctx = ex.Context(str(tmp_path), seed=1, progress=False)
    split = ex.split(ctx, "synthetic", root=str(tmp_path / "syn"), name="syn", num_ids=4, seed=2)
    weights = str(tmp_path / "w.caffemodel")
    caffe_env.net_from_spec(geng16.deploy("dgdnet"), caffe.TEST).save(weights)
    out = ctx.path("f.npz")
    assert ex.extract(ctx, out, weights, split, "dgdnet", ["query"]) == out
    made = os.path.getmtime(out)
    assert ex.extract(ctx, out, weights, split, "dgdnet", ["query"]) == out
    assert os.path.getmtime(out) == made
    with pytest.raises(Stale, match=r"f.npz was made with options"):
        ex.extract(ctx, out, weights, split, "dgdnet", ["gallery"])
    caffe_env.net_from_spec(geng16.deploy("dgdnet"), caffe.TEST).save(weights)  # new fillers
    with pytest.raises(Stale, match=r"f.npz was made with weights = "):
        ex.extract(ctx, out, weights, split, "dgdnet", ["query"])
    ctx.recompute = True
    ex.extract(ctx, out, weights, split, "dgdnet", ["query"])
    assert os.path.getmtime(out) != made


def test_a_single_shot_split_follows_its_record(tmp_path):
    ctx = ex.Context(str(tmp_path), progress=False)
    split = ex.split(ctx, "synthetic", root=str(tmp_path / "syn"), name="syn", num_ids=4, seed=2)
    shot = ex.single_shot(ctx, split, "shot", seed=0)
    assert ex.single_shot(ctx, split, "shot", seed=0) == shot
    with pytest.raises(Stale, match=r"shot.json was made with seed = 0, this run has 1"):
        ex.single_shot(ctx, split, "shot", seed=1)
    ctx.recompute = True
    assert ex.single_shot(ctx, split, "shot", seed=1) == shot
    ctx.recompute = False
    assert ex.single_shot(ctx, split, "shot", seed=1) == shot  # remade with its new record
