"""tools/experiment.py's MTDnet stages on a tiny synthetic set: a training
stage from generated text, then CIR and -trp reports that share one scoring
run of the model (issue 7)."""
import json
import os

from common import caffe_env
from tools import experiment as ex


def test_mtdnet_stage_and_tests_share_one_scoring_run(tmp_path):
    caffe_env.set_mode(None)
    ctx = ex.Context(str(tmp_path), seed=1, progress=False)
    split = ex.split(ctx, "synthetic", root=str(tmp_path / "syn"), name="syn", num_ids=8, seed=2)
    weights = ex.mtdnet(ctx, "mt", "mtdnet", ex.lmdb(ctx, split, "train", ex.MTDNET_LMDB), 2,
                        size=64, batch=2)
    assert weights == ctx.path("mt", "final.caffemodel") and os.path.isfile(weights)
    assert os.path.isfile(ctx.path("mt", ex.NET)) and not os.path.exists(ctx.path("mt", ex.INIT))
    shot = ex.single_shot(ctx, split, "syn_single_shot")
    query, gallery = ex.lmdb(ctx, shot, "query", ex.MTDNET_LMDB), ex.lmdb(ctx, shot, "gallery",
                                                                           ex.MTDNET_LMDB)
    reports = [ex.evaluate_mtdnet(ctx, "eval_" + test, weights, query, gallery, test, size=64,
                                  passes=1) for test in ("cir", "trp")]
    scores = [f for f in os.listdir(ctx.path("mt")) if f.endswith(".scores.npz")]
    assert len(scores) == 1
    for report in reports:
        with open(os.path.join(report, "results.json")) as f:
            assert 0 <= json.load(f)["results"][0]["cmc"][0] <= 1
