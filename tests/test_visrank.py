"""Ranked lists (evaluation/visrank.py): the ranking and
its junk are the evaluation's own (Market's rule, single-shot's), every
shown image is the one the evaluation read (the split's file, or the LMDB
entry that was scored), framed by what it is."""
import numpy as np
import pytest
from PIL import Image

from tests.fixtures_results import GALLERY, QUERY, colour, make_features, make_split
from evaluation import cmc, market, visrank


def _random_case(seed):
    rng = np.random.default_rng(seed)
    nq, ng = 12, 40
    g_pids = rng.integers(-1, 8, ng)
    g_cams = rng.integers(1, 4, ng)
    q_pids, q_cams = rng.integers(1, 8, nq), rng.integers(1, 4, nq)
    dist = rng.integers(0, 6, (nq, ng)).astype(np.float64)   # many ties
    return dist, q_pids, q_cams, g_pids, g_cams


@pytest.mark.parametrize("seed", range(5))
def test_ranks_and_junk_are_the_market_evaluation_s(seed):
    dist, q_pids, q_cams, g_pids, g_cams = _random_case(seed)
    first = market.evaluate_market(dist, q_pids, q_cams, g_pids, g_cams)["first"]
    junk, good = market.marks(q_pids, q_cams, g_pids, g_cams)
    for q in range(len(q_pids)):
        entries = visrank.ranked_entries(dist[q], junk[q], good[q], top=len(g_pids))
        for g, kind, rank in entries:
            is_junk = g_pids[g] == -1 or (g_pids[g] == q_pids[q] and g_cams[g] == q_cams[q])
            assert (kind == "junk") == is_junk
            assert (kind == "good") == (not is_junk and g_pids[g] == q_pids[q])
        ranks = [rank for _, kind, rank in entries if kind == "good"]
        # the first true match sits where the evaluation found it (ties by gallery order)
        assert (ranks[0] - 1 if ranks else -1) == first[q]
        shown = [g for g, kind, _ in entries if kind != "junk"]
        assert [rank for _, kind, rank in entries if kind != "junk"] == list(range(1, len(shown) + 1))
        assert sorted(shown, key=lambda g: (dist[q, g], g)) == shown


def test_single_shot_junk_is_the_query_camera():
    dist, q_pids, q_cams, g_pids, g_cams = _random_case(7)
    junk, good = cmc.marks(q_pids, q_cams, g_pids, g_cams)
    np.testing.assert_array_equal(junk, g_cams[None, :] == q_cams[:, None])
    np.testing.assert_array_equal(good, (g_pids[None, :] == q_pids[:, None]) & ~junk)
    # scores rank the highest first
    entries = visrank.ranked_entries(-dist[0], junk[0], good[0], top=5, similarity=True)
    assert [g for g, k, _ in entries if k != "junk"] == [
        g for g in np.argsort(dist[0], kind="stable") if not junk[0, g]][:5]


def _has(pixels, rgb, tol=3):
    return bool((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol).any())


def _hex(c):
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def _check_picture(png, lists, q_cams_pids, g_cams_pids):
    pixels = np.asarray(Image.open(png).convert("RGB"))
    for q, entries in lists:
        assert _has(pixels, colour(*q_cams_pids[q]))
        for g, kind, _ in entries:
            assert _has(pixels, colour(*g_cams_pids[g])), (q, g)   # the image itself
    kinds = {kind for _, entries in lists for _, kind, _ in entries}
    for kind in kinds | {"query"}:
        assert _has(pixels, _hex(visrank.COLOURS[kind]), tol=0), kind   # its frame


def test_ranked_lists_of_a_features_file_show_the_split_s_images(tmp_path):
    split_path, split = make_split(tmp_path / "data")
    features = make_features(str(tmp_path / "f.npz"), split_path, split)
    png = str(tmp_path / "ranked.png")
    lists = visrank.draw(visrank.from_features(features, "market"), png, title="t")
    assert [q for q, _ in lists] == [0, 1, 2]            # every query has a match here
    q0 = lists[0][1]
    assert q0[0] == (0, "good", 1)                       # placed next to its match
    junk = [g for g, kind, _ in q0 if kind == "junk"]
    assert set(junk) <= {1, 8}                           # same person, same camera; id -1
    assert sum(1 for _, kind, _ in q0 if kind != "junk") == visrank.TOP
    _check_picture(png, lists, QUERY, GALLERY)


def test_ranked_lists_of_a_cir_score_file_show_the_scored_lmdb_images(tmp_path):
    from caffe import TEST
    from caffe.proto import caffe_pb2
    from data_prep.lmdb_builder import build_lmdb
    from tests.helpers import net_from_spec
    from tools import mtdnet_cir
    from networks import mtdnet as netgen
    split_path, split = make_split(tmp_path / "data")
    lmdbs = {s: str(tmp_path / s) for s in ("query", "gallery")}
    for subset, path in lmdbs.items():
        build_lmdb(split, path, 64, 32, subset=subset, verbose=False)
    weights = str(tmp_path / "pair.caffemodel")
    # one model holding every layer of the three deploy nets the test loads
    model, rng = caffe_pb2.NetParameter(), np.random.default_rng(0)
    for build in (netgen.deploy_feat, netgen.deploy_head, netgen.deploy_pair):
        net = net_from_spec(build(size=64), TEST)
        for blobs in net.params.values():   # deploy nets have no fillers: weights for every layer
            for blob in blobs:
                blob.data[...] = rng.normal(0, 0.05, blob.data.shape)
        net.save(weights)
        part = caffe_pb2.NetParameter()
        with open(weights, "rb") as f:
            part.ParseFromString(f.read())
        known = {layer.name for layer in model.layer}
        model.layer.extend(layer for layer in part.layer if layer.name not in known)
    with open(weights, "wb") as f:
        f.write(model.SerializeToString())
    scores = str(tmp_path / "scores.npz")
    mtdnet_cir.main(["--weights", weights, "--query", lmdbs["query"], "--gallery",
                     lmdbs["gallery"], "--size", "64", "--passes", "1", "--out", scores])
    ranking = visrank.from_scores(scores, "scores", "single-shot", similarity=True)
    png = str(tmp_path / "ranked.png")
    lists = visrank.draw(ranking, png, n=2, top=4)
    assert len(lists) == 2
    for q, entries in lists:   # the query's own camera is no candidate
        assert all((kind == "junk") == (GALLERY[g][1] == QUERY[q][1]) for g, kind, _ in entries)
    _check_picture(png, lists, QUERY, GALLERY)


def test_a_score_file_without_its_lmdbs_is_refused_naming_them(tmp_path):
    path = str(tmp_path / "old.npz")
    np.savez(path, scores=np.zeros((1, 2)), q_pids=[1], q_cams=[1], g_pids=[1, 2], g_cams=[2, 2])
    with pytest.raises(ValueError, match="q_lmdb, g_lmdb"):
        visrank.from_scores(path, "scores", "single-shot", True)
