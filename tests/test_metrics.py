"""Evaluation metrics (docs/evaluation.md) on hand-computed cases:
Market-1501's official good/junk rule, trapezoid and step-wise AP, ties,
queries without a match, distractors; single-shot CMC with random gallery
draws; multi-query pooling; trial averaging; blocked distances."""
import numpy as np
import pytest

from bench.bench_market_eval import market_like
from tests import market_oracle
from evaluation.cmc import single_shot_cmc
from evaluation.distance import euclidean
from evaluation.market import average_precision, evaluate_market
from evaluation.multi_query import pool_features
from evaluation.trials import aggregate

# One query (id 1, camera 1) against seven gallery images.
#   index: 0     1     2     3     4     5     6
G_PIDS = [1, 2, 1, -1, 0, 1, 3]
G_CAMS = [2, 2, 1, 3, 2, 3, 1]
DIST = [0.5, 0.1, 0.05, 0.2, 0.3, 0.9, 0.7]
# Ranked: 2 (junk: same id, same camera), 1, 3 (junk: id -1), 4 (distractor,
# a negative), 0 (good), 6, 5 (good). Junk-free: 1, 4, 0, 6, 5 -> the good
# images at positions 2 and 4.
TRAPEZOID = 0.5 * (0 + 1 / 3) / 2 + 0.5 * (1 / 4 + 2 / 5) / 2    # = 0.2458333...
STEP = (1 / 3 + 2 / 5) / 2                                        # = 0.3666666...


def market(dist, q_pids, q_cams, g_pids=G_PIDS, g_cams=G_CAMS, **kw):
    return evaluate_market(np.array(dist, np.float32), q_pids, q_cams, g_pids, g_cams, **kw)


def test_market_junk_distractors_and_both_ap_rules():
    res = market([DIST], [1], [1])
    assert res["ap"][0] == pytest.approx(TRAPEZOID, abs=1e-12)
    assert res["mAP"] == pytest.approx(0.24583333333, abs=1e-9)
    np.testing.assert_array_equal(res["first"], [2])
    np.testing.assert_array_equal(res["cmc"], [0, 0, 1, 1, 1, 1, 1])
    step = market([DIST], [1], [1], ap="step")
    assert step["mAP"] == pytest.approx(STEP, abs=1e-12)
    assert step["mAP"] > res["mAP"]      # the official rule reads lower here


def test_trapezoid_and_step_agree_when_good_images_lead():
    # Good images first in the junk-free ranking: both rules give exactly 1.
    dist = [[0.01, 0.1, 0.05, 0.2, 0.3, 0.02, 0.7]]
    for rule in ("trapezoid", "step"):
        assert market(dist, [1], [1], ap=rule)["mAP"] == 1.0
    # One good image, one negative ahead: trapezoid (0 + 1/2)/2, step 1/2.
    assert average_precision(np.array([1]), "trapezoid") == 0.25
    assert average_precision(np.array([1]), "step") == 0.5
    # Positions 0, 2: trapezoid 1/2·1 + 1/2·(1/2 + 2/3)/2; step (1 + 2/3)/2.
    assert average_precision(np.array([0, 2])) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2, abs=1e-15)
    assert average_precision(np.array([0, 2]), "step") == pytest.approx((1 + 2 / 3) / 2, abs=1e-15)


def test_query_without_good_image_counts_zero():
    # Query id 3 (camera 1): its only gallery image is in camera 1 -> junk.
    res = market([DIST, DIST], [1, 3], [1, 1])
    assert res["ap"][1] == 0.0
    assert res["num_valid"] == 1 and res["num_queries"] == 2
    assert res["mAP"] == pytest.approx(TRAPEZOID / 2, abs=1e-12)
    np.testing.assert_array_equal(res["cmc"], [0, 0, 0.5, 0.5, 0.5, 0.5, 0.5])
    # An id absent from the gallery: the same.
    assert market([DIST], [9], [1])["mAP"] == 0.0


def test_ties_break_by_gallery_order():
    # Good (index 1) and negative (index 0) at the same distance: the earlier
    # gallery image ranks first -> good at position 1.
    res = evaluate_market(np.array([[0.5, 0.5, 0.9]]), [1], [1], [2, 1, 3], [2, 2, 2])
    assert res["ap"][0] == 0.25 and res["first"][0] == 1
    # Swapped gallery order -> good first.
    res = evaluate_market(np.array([[0.5, 0.5, 0.9]]), [1], [1], [1, 2, 3], [2, 2, 2])
    assert res["ap"][0] == 1.0 and res["first"][0] == 0
    # A junk image tied in front changes nothing.
    res = evaluate_market(np.array([[0.5, 0.5, 0.9]]), [1], [1], [-1, 1, 3], [2, 2, 2])
    assert res["ap"][0] == 1.0
    # Two good images tied with a negative between them in gallery order:
    # order 0 (good), 1 (neg), 2 (good) -> positions 0, 2.
    res = evaluate_market(np.array([[0.5, 0.5, 0.5]]), [1], [1], [1, 2, 1], [2, 2, 3])
    assert res["ap"][0] == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2, abs=1e-15)


def test_similarity_scores_rank_high_first():
    scores = -np.array([DIST], np.float64)
    res = evaluate_market(scores, [1], [1], G_PIDS, G_CAMS, similarity=True)
    assert res["ap"][0] == pytest.approx(TRAPEZOID, abs=1e-12)
    # Score ties keep gallery order too.
    res = evaluate_market(np.array([[0.7, 0.7]]), [1], [1], [2, 1], [2, 2], similarity=True)
    assert res["first"][0] == 1


def test_oracle_gives_the_hand_computed_values():
    # The per-rank port of compute_AP.m on the hand-worked query above.
    for rule, want in (("trapezoid", TRAPEZOID), ("step", STEP)):
        cmc, mAP, aps = market_oracle.evaluate([DIST], [1], [1], G_PIDS, G_CAMS, rule)
        assert mAP == pytest.approx(want, abs=1e-15)
        np.testing.assert_array_equal(cmc, [0, 0, 1, 1, 1, 1, 1])


def test_market_matches_official_per_rank_loop_with_ties_and_blocks():
    rng = np.random.default_rng(3)
    nq, ng = 37, 200
    g_pids = rng.integers(-1, 12, ng)
    g_cams = rng.integers(1, 4, ng)
    q_pids = rng.integers(1, 14, nq)        # ids 12, 13: no gallery image
    q_cams = rng.integers(1, 4, nq)
    dist = rng.integers(0, 15, (nq, ng)).astype(np.float32)   # many exact ties
    for rule in ("trapezoid", "step"):
        cmc, mAP, aps = market_oracle.evaluate(dist, q_pids, q_cams, g_pids, g_cams, rule)
        for block in (1, 5, 64):
            res = evaluate_market(dist, q_pids, q_cams, g_pids, g_cams, ap=rule, block=block)
            np.testing.assert_array_equal(res["cmc"], cmc)
            # The loop sums recall steps, the package a closed form: equal up to rounding.
            np.testing.assert_allclose(res["ap"], aps, rtol=0, atol=1e-12)
            assert res["mAP"] == pytest.approx(mAP, abs=1e-12)


def test_market_sized_generator_is_realistic():
    q, g, q_pids, q_cams, g_pids, g_cams = market_like(num_query=40, num_gallery=8000, dim=16)
    assert (g_pids == -1).any() and (g_pids == 0).any()
    dist = euclidean(q, g)
    res = evaluate_market(dist, q_pids, q_cams, g_pids, g_cams)
    cmc, mAP, _ = market_oracle.evaluate(dist, q_pids, q_cams, g_pids, g_cams)
    assert res["mAP"] == pytest.approx(mAP, abs=1e-12) and np.array_equal(res["cmc"], cmc)


def test_market_rejects_bad_input():
    with pytest.raises(ValueError, match="g_cams has 6 entries"):
        evaluate_market(np.zeros((1, 7)), [1], [1], G_PIDS, G_CAMS[:6])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_market(np.full((1, 7), np.nan), [1], [1], G_PIDS, G_CAMS)
    with pytest.raises(ValueError, match="ap must be"):
        evaluate_market(np.zeros((1, 7)), [1], [1], G_PIDS, G_CAMS, ap="11-point")


# Single shot: probes of ids 1, 2 (camera 1); gallery of ids 1-4.
SS_PIDS = [1, 2, 3, 4]
SS_CAMS = [2, 2, 2, 1]


def test_single_shot_one_image_per_identity():
    dist = np.array([[0.3, 0.1, 0.5, 0.05],     # id 4 is in the probe's camera: not a candidate
                     [0.4, 0.2, 0.1, 0.9]])
    cmc = single_shot_cmc(dist, [1, 2], [1, 1], SS_PIDS, SS_CAMS, repeats=3)
    # Probe 1: only id 2 ranks before it -> rank 2. Probe 2: id 3 before it -> rank 2.
    np.testing.assert_array_equal(cmc, [0, 1, 1, 1])
    # max_rank cuts; scores with similarity=True give the same.
    np.testing.assert_array_equal(single_shot_cmc(-dist, [1, 2], [1, 1], SS_PIDS, SS_CAMS,
                                                  similarity=True, max_rank=2), [0, 1])


def test_single_shot_ties_and_missing_match():
    dist = np.array([[0.5, 0.5, 0.9], [0.5, 0.5, 0.9]])
    # Probe 1: id 2 (index 0) ties with id 1 (index 1) and comes first in gallery order.
    # Probe 2 (id 5) has no gallery image: a miss at every rank.
    cmc = single_shot_cmc(dist, [1, 5], [1, 1], [2, 1, 3], [2, 2, 2], repeats=1)
    np.testing.assert_array_equal(cmc, [0, 0.5, 0.5])
    # A match only in the probe's own camera does not count either.
    cmc = single_shot_cmc(dist[:1], [1], [2], [2, 1, 3], [2, 2, 1], repeats=1)
    np.testing.assert_array_equal(cmc, [0, 0, 0])


def test_single_shot_random_draw_is_uniform_and_seeded():
    # Id 1 has two candidates: at 0.05 (rank 1) and 0.9 (rank 2, behind id 2).
    dist = np.array([[0.05, 0.9, 0.5]])
    g_pids, g_cams = [1, 1, 2], [2, 3, 2]
    cmc = single_shot_cmc(dist, [1], [1], g_pids, g_cams, repeats=2000, seed=1)
    assert 0.45 < cmc[0] < 0.55 and cmc[1] == 1.0
    one = [single_shot_cmc(dist, [1], [1], g_pids, g_cams, repeats=1, seed=s)[0] for s in range(20)]
    assert set(one) == {0.0, 1.0}
    # Same seed, same numbers; another seed, other numbers (many probes).
    rng = np.random.default_rng(0)
    big = rng.random((50, 120))
    args = (rng.integers(1, 30, 50), np.ones(50, int), rng.integers(1, 30, 120), np.full(120, 2))
    a = single_shot_cmc(big, *args, repeats=10, seed=7)
    np.testing.assert_array_equal(a, single_shot_cmc(big, *args, repeats=10, seed=7))
    assert not np.array_equal(a, single_shot_cmc(big, *args, repeats=10, seed=8))
    # The draw does not depend on the block size.
    np.testing.assert_array_equal(a, single_shot_cmc(big, *args, repeats=10, seed=7, block=7))


def test_multi_query_mean_and_max_pooling():
    feats = np.array([[1, 0], [3, 4], [5, -2], [0, 0]], np.float32)
    index = [10, 11, 12, 13]
    pools = {"10": [10, 11, 12], "13": [13]}
    np.testing.assert_allclose(pool_features(feats, index, pools, [10, 13]), [[3, 2 / 3], [0, 0]])
    np.testing.assert_array_equal(pool_features(feats, index, pools, [10, 13], "max"), [[5, 4], [0, 0]])
    # A query without a pool is itself.
    np.testing.assert_array_equal(pool_features(feats, index, pools, [11]), [[3, 4]])
    with pytest.raises(ValueError, match="pools image 12"):
        pool_features(feats[:2], index[:2], pools, [10])


def test_trials_mean_and_std():
    agg = aggregate([{"cmc": [0.5, 1.0, 1.0], "mAP": 0.2}, {"cmc": [1.0, 1.0], "mAP": 0.4}])
    np.testing.assert_allclose(agg["cmc"], [0.75, 1.0])
    np.testing.assert_allclose(agg["cmc_std"], [np.sqrt(0.125), 0.0])
    assert agg["mAP"] == pytest.approx(0.3) and agg["mAP_std"] == pytest.approx(np.sqrt(0.02))
    assert aggregate([{"cmc": [0.5], "mAP": None}])["mAP"] is None
    assert aggregate([{"cmc": [0.5], "mAP": 0.1}])["mAP_std"] == 0.0


def test_euclidean_blocks_match_direct_distances():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((13, 8)), rng.standard_normal((9, 8))
    direct = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    for block in (1, 4, 100):
        np.testing.assert_allclose(euclidean(a, b, block=block), direct, rtol=1e-5, atol=1e-5)
    assert euclidean(a, a, dtype=np.float64).diagonal().max() < 1e-6
    with pytest.raises(ValueError, match="equal widths"):
        euclidean(a, b[:, :4])
