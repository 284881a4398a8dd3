"""Fidelity choices (docs/reproducing.md): each reading of the papers and of the
authors' code that differs is a named option; these tests show each option
does what it says, through real pycaffe nets and generated prototxt."""
import os

import numpy as np
import pytest

from layers import pair_generation as pg
from tests.helpers import check_gradient, python_layer_net


def _labels(k, m):
    return np.repeat(np.arange(k) * 7 + 3, m).astype(np.float32)


# Geng16 §5.2: "32 people … two images for each … resulting in 3,968 positive
# and negative pairs being generated respectively". Counted by hand for a
# 64-image batch: unordered C(64,2) = 2,016 pairs, 32 of them positive, so
# 1,984 negatives and 3,968 pairs once balanced; ordered 64 positives (32 × 2
# directions) and 64 × 62 = 3,968 negatives, 7,936 pairs once balanced.
@pytest.mark.parametrize("pairs,pos,neg,total", [("unordered", 32, 1984, 3968),
                                                 ("ordered", 64, 3968, 7936)])
def test_in_batch_pair_counts_of_both_readings(pairs, pos, neg, total):
    assert pg.structure_counts(64, 2, pairs) == (pos, neg)
    assert pg.balanced_pair_count(64, 2, pairs) == total
    labels = _labels(32, 2)
    net, _, tops = python_layer_net("layers.pair_generation", "PairGeneration",
                                    [np.zeros((64, 3), np.float32), labels],
                                    params={"pairs": pairs}, ntop=3)
    net.forward()
    same = net.blobs[tops[2]].data
    assert (len(same), int(same.sum())) == (total, total // 2)
    left, right, same = pg.generate_pairs(labels, np.random.RandomState(0), pairs)
    negatives = set(zip(left[same == 0].tolist(), right[same == 0].tolist()))
    assert len(negatives) == neg == total // 2  # every negative exactly once
    if pairs == "ordered":   # both directions of each pair
        assert negatives == {(j, i) for i, j in negatives}
    else:
        assert all(i < j for i, j in negatives)


def test_ordered_pairs_gradient_accumulates():
    k, m, dim = 3, 2, 4  # ordered: 6 positives, 24 negatives → 4 copies each, no random draw
    x = np.random.RandomState(0).randn(k * m, dim).astype(np.float32)
    net, bottoms, tops = python_layer_net("layers.pair_generation", "PairGeneration",
                                          [x, _labels(k, m)],
                                          params={"pairs": "ordered", "seed": 1}, ntop=3)
    net.forward()
    assert net.blobs[tops[2]].data.shape == (48,)
    check_gradient(net, bottoms, tops, check=[bottoms[0]])


def test_pairs_param_is_checked():
    with pytest.raises(Exception, match="'pairs' must be unordered or ordered"):
        python_layer_net("layers.pair_generation", "PairGeneration",
                         [np.zeros((4, 2), np.float32), _labels(2, 2)],
                         params={"pairs": "both"}, ntop=3)


# ---- MTDnet-rnk: ours (the paper's reading) or the authors' train_val.prototxt

SMALL = 64     # MTDnet input side for tests: pool5 1 × 1, so fc6 takes 256 inputs
CAFFENET_SIDE = 67  # CaffeNet's deploy at this side has the same shapes (pool5 1 × 1)


def _rnk_layers(rnk_net):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    from networks import mtdnet
    param = caffe_pb2.NetParameter()
    text_format.Merge(str(mtdnet.mtdnet_rnk(data="input", batch=1, rnk_net=rnk_net).to_proto()),
                      param)
    return param.layer


def _bias(layer):
    p = layer.convolution_param if layer.type == "Convolution" else layer.inner_product_param
    return round(p.bias_filler.value, 6)


def test_authors_rnk_net_has_alexnet_order_and_their_bias_fillers():
    """The authors' MTDnet-rnk/train_val.prototxt: LRN before pooling, bias
    fillers 0.1 on conv2, conv4, conv5, fc6, fc7 (and fc8); ours: CaffeNet
    order, 0 but on the 512-D feature fc8."""
    order = {}
    for rnk_net in ("ours", "authors"):
        layers = _rnk_layers(rnk_net)
        order[rnk_net] = [(l.name, list(l.bottom)) for l in layers
                          if l.name in ("norm1", "pool1", "conv2", "norm2", "pool2", "conv3")]
        biases = {l.name: _bias(l) for l in layers if l.type in ("Convolution", "InnerProduct")}
        tenth = {"conv2", "conv4", "conv5", "fc6", "fc7", "fc8"} if rnk_net == "authors" else {"fc8"}
        assert biases == {name: 0.1 if name in tenth else 0.0 for name in
                          ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")}
    assert order["authors"] == [("norm1", ["conv1"]), ("pool1", ["norm1"]), ("conv2", ["pool1"]),
                                ("norm2", ["conv2"]), ("pool2", ["norm2"]), ("conv3", ["pool2"])]
    assert order["ours"] == [("pool1", ["conv1"]), ("norm1", ["pool1"]), ("conv2", ["norm1"]),
                             ("pool2", ["conv2"]), ("norm2", ["pool2"]), ("conv3", ["norm2"])]


@pytest.fixture(scope="module")
def random_caffenet(tmp_path_factory):
    """bvlc_reference_caffenet's canonical deploy.prototxt at a small input,
    every layer random, saved as a .caffemodel; returns (path, its weights)."""
    import os
    from google.protobuf import text_format
    import caffe
    from caffe.proto import caffe_pb2
    from common import caffe_env
    tmp = tmp_path_factory.mktemp("caffenet")
    param = caffe_pb2.NetParameter()
    with open(os.path.join(caffe_env.caffe_models_dir(), "bvlc_reference_caffenet",
                           "deploy.prototxt")) as f:
        text_format.Merge(f.read(), param)
    param.layer[0].input_param.shape[0].dim[:] = [1, 3, CAFFENET_SIDE, CAFFENET_SIDE]
    (tmp / "caffenet.prototxt").write_text(text_format.MessageToString(param))
    net = caffe.Net(str(tmp / "caffenet.prototxt"), caffe.TEST)
    rng = np.random.RandomState(7)
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = rng.randn(*b.data.shape)
    net.save(str(tmp / "caffenet.caffemodel"))
    return str(tmp / "caffenet.caffemodel"), {k: [np.array(b.data) for b in v]
                                              for k, v in net.params.items()}


@pytest.mark.parametrize("rnk_net,copied", [
    ("ours", ["conv1", "conv2"]),
    ("authors", ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"])])
def test_rnk_init_from_caffenet(rnk_net, copied, random_caffenet, tmp_path):
    """The authors initialise their rnk from the whole CaffeNet model: every
    layer the names match (fc8 is CaffeNet's 1000-way classifier, the rnk's
    512-D feature: it keeps its filler); ours, as the paper, conv1–conv2."""
    from training import mtdnet_init
    from networks import mtdnet
    from training.surgery import read_blobs
    caffenet, theirs = random_caffenet
    net_path = tmp_path / "rnk.prototxt"
    net_path.write_text(mtdnet.net_text(mtdnet.mtdnet_rnk(data="input", batch=1, size=SMALL,
                                                          rnk_net=rnk_net), "rnk"))
    out = str(tmp_path / "init.caffemodel")
    mtdnet_init.build_init(str(net_path), out, caffenet=caffenet)
    got = {k: [np.array(b.data).reshape(-1) for b in v] for k, v in read_blobs(out).items()}
    assert sorted(got) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    for name in got:
        same = [np.array_equal(g, w.reshape(-1)) for g, w in zip(got[name], theirs[name])
                if g.size == w.size]
        assert (same == [True, True]) == (name in copied), name
    assert mtdnet.model_rnk_net(out) == rnk_net  # the saved model keeps its wiring


def test_rnk_deploy_follows_the_models_reading():
    """Each reading's deploy feature is its train net's: the same weights
    through the train net's trunk and the deploy net give one `normfeat`."""
    import caffe
    from common.caffe_env import net_from_spec
    from networks import mtdnet
    for rnk_net in ("ours", "authors"):
        train = net_from_spec(mtdnet.mtdnet_rnk(data="input", batch=1, size=SMALL,
                                                rnk_net=rnk_net), caffe.TEST)
        rng = np.random.RandomState(3)
        for blobs in train.params.values():
            for b in blobs:
                b.data[...] = rng.randn(*b.data.shape) * 0.05
        x = rng.uniform(0, 255, train.blobs["data"].data.shape).astype(np.float32)
        train.blobs["data"].data[...] = x
        train.forward()
        deploys = {}
        for reading in ("ours", "authors"):
            deploy = net_from_spec(mtdnet.deploy_rnk_feat(batch=3, size=SMALL, rnk_net=reading))
            for name, blobs in train.params.items():
                for d, t in zip(deploy.params[name], blobs):
                    d.data[...] = t.data
            deploy.blobs["data"].data[...] = x.reshape(3, 3, SMALL, SMALL)
            deploys[reading] = deploy.forward()["normfeat"].reshape(-1).copy()
        np.testing.assert_allclose(deploys[rnk_net], train.blobs["normfeat"].data.reshape(-1),
                                   rtol=1e-4, atol=1e-6)
        assert not np.allclose(deploys["ours"], deploys["authors"], atol=1e-3)  # order matters
        assert mtdnet.rnk_net_of(train.bottom_names) == rnk_net


# ---- tools.reproduce: the options reach the stages; elsewhere they are refused

def _dgdnet_model(path, num_ids=5):
    """A stand-in for DGDNet ImageNet weights: the fillers, with BatchNorm
    statistics of the identity (mean 0, variance 1) for step 1 to keep."""
    import caffe
    from common import caffe_env
    from networks import geng16
    net = caffe_env.net_from_spec(geng16.geng16(base="dgdnet", data="input", k=2, m=2,
                                                num_ids=num_ids), caffe.TRAIN)
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type == "BatchNorm":
            net.params[name][0].data[...] = 0
            net.params[name][1].data[...] = 1
            net.params[name][2].data[...] = 1
    net.save(path)
    return path


def test_reproduce_geng16_stage_trains_ordered_pairs_and_step1_pv(tmp_path):
    """A Geng16 transfer stage as tools.reproduce runs it (Table 8's
    ImageNet row, two-stepped) with --pairs ordered --step1-pv: its nets ask
    for ordered pairs, and step 1 trains PV while the base stays."""
    import glob
    from google.protobuf import text_format
    from caffe.proto import caffe_pb2
    from data_prep import synthetic
    from tools import reproduce
    from training.surgery import read_blobs
    synthetic.generate(str(tmp_path / "data" / "market1501"), num_ids=12, seed=4, quiet=True)
    weights = _dgdnet_model(str(tmp_path / "imagenet.caffemodel"))
    assert reproduce.main(["geng16", "table8", "market", "dgdnet", "sid_pv", "imagenet",
                           "--imagenet", weights, "--data-root", str(tmp_path / "data"),
                           "--run-dir", str(tmp_path / "runs"), "--scale", "0.00004", "--k", "2",
                           "--augment", "0", "--pairs", "ordered", "--step1-pv"]) == 0
    (work,) = glob.glob(str(tmp_path / "runs" / "work" / "geng16" / "market1501_t0-*"))
    for step, pv_lr in (("step1", 1), ("step2", 1)):
        with open(os.path.join(work, step, "train.prototxt")) as f:
            net = text_format.Merge(f.read(), caffe_pb2.NetParameter())
        layers = {l.name: l for l in net.layer}
        assert '"pairs": "ordered"' in layers["main/pairs"].python_param.param_str, step
        assert layers["main/pv_fc"].param[0].lr_mult == pv_lr, step
        assert layers["conv1"].param[0].lr_mult == (0 if step == "step1" else 1), step
    init = read_blobs(os.path.join(work, "step1", "init.caffemodel"))
    after = read_blobs(os.path.join(work, "step1", "final.caffemodel"))
    assert list(init["main/pv_fc"][0].data) != list(after["main/pv_fc"][0].data)  # PV learnt
    assert list(init["conv1"][0].data) == list(after["conv1"][0].data)            # base kept


@pytest.mark.parametrize("argv,message", [
    (["geng16", "table9", "--pairs", "ordered"], "--pairs does not apply to 'geng16 table9'"),
    (["mtdnet", "viper", "mtdnet", "--step1-pv"], "--step1-pv does not apply"),
    (["mtdnet", "viper", "cls", "--rnk-net", "authors"], "--rnk-net does not apply to 'mtdnet viper cls'"),
    (["mtdnet", "viper", "mtdnet", "--prid-lr", "authors"], "it changes the MTDnet PRID2011 rows"),
    (["geng16", "table2", "--rnk-net", "authors"], "--rnk-net does not apply")])
def test_reproduce_refuses_an_option_the_experiment_does_not_use(argv, message, tmp_path, capsys):
    from common import cli
    from tools import reproduce
    assert cli.run(reproduce.main, argv + ["--run-dir", str(tmp_path / "run")]) == cli.BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "run").exists()  # refused before anything is made


def test_reproduce_options_apply_where_they_belong():
    from experiments import recipes
    for key, opts in (("geng16 table6 one-stepped", dict(pairs="ordered", step1_pv=True)),
                      ("geng16 table4 pv", dict(pairs="ordered")),
                      ("mtdnet cuhk03 rnk", dict(rnk_net="authors")),
                      ("mtdnet prid2011 mtdnet", dict(prid_lr="authors")),
                      ("mtdnet prid2011 rnk", dict(prid_lr="authors", rnk_net="authors"))):
        assert key in recipes.experiments()
        recipes.check_options(key, recipes.Options(**opts))  # no refusal


def test_rnk_test_uses_the_deploy_net_of_the_models_reading(tmp_path):
    """tools.mtdnet_cir --rnk on an authors'-reading model ranks by that
    reading's feature (AlexNet order), told by the model's saved wiring."""
    import caffe
    from common import caffe_env
    from tests.helpers import query_gallery_lmdbs
    from evaluation import cir
    from tools import mtdnet_cir
    from networks import mtdnet
    caffe_env.set_mode(None)
    train = caffe_env.net_from_spec(mtdnet.mtdnet_rnk(data="input", batch=1, size=SMALL,
                                                      rnk_net="authors"), caffe.TEST)
    rng = np.random.RandomState(5)
    for blobs in train.params.values():
        for b in blobs:
            b.data[...] = rng.randn(*b.data.shape) * 0.05
    weights = str(tmp_path / "rnk.caffemodel")
    train.save(weights)
    lmdbs = query_gallery_lmdbs(tmp_path, 4, SMALL)
    out = str(tmp_path / "rnk.npz")
    mtdnet_cir.main(["--weights", weights, "--query", lmdbs["query"], "--gallery", lmdbs["gallery"],
                     "--size", str(SMALL), "--rnk", "--out", out])
    with np.load(out) as z:
        saved = z["rnk_distances"]
    q, g = cir._load(lmdbs["query"], SMALL, None)[0], cir._load(lmdbs["gallery"], SMALL, None)[0]
    expected = {reading: cir.trp_distances(cir.load_net(mtdnet.deploy_rnk_feat(
        size=SMALL, rnk_net=reading), weights), q, g) for reading in ("ours", "authors")}
    np.testing.assert_allclose(saved, expected["authors"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(saved, expected["ours"], atol=1e-3)
