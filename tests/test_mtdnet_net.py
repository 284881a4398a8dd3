"""MTDnet family through real pycaffe: parameter sharing, one
training step of every train net, the cross-domain loss decreasing, CIR
batched scoring equal to one pair at a time, CaffeNet and by-name loading."""
import os

import numpy as np
import pytest
from google.protobuf import text_format

import caffe
from caffe.proto import caffe_pb2
from common import caffe_env
from common.caffe_env import net_from_spec
from evaluation import cir
from tools import mtdnet_cir
from training import mtdnet_init
from networks import mtdnet as netgen
from networks import solver as schedules

SMALL = 64  # input side: norm2 3×3, pool5 1×1 — keeps CPU time low


def _fill_inputs(net, seed=0):
    rng = np.random.RandomState(seed)
    for name in net.inputs:
        net.blobs[name].data[...] = rng.uniform(0, 255, net.blobs[name].data.shape)
    if "src_label" in net.blobs:
        net.blobs["src_label"].data[...] = np.arange(net.blobs["src_label"].count) % 2 == 0


def _randomise(net, seed=0, gain=1.0):
    """He-scaled random weights so that a small random net's outputs vary."""
    rng = np.random.RandomState(seed)
    for blobs in net.params.values():
        w = blobs[0].data
        w[...] = rng.randn(*w.shape) * gain * np.sqrt(2.0 / (w.size // w.shape[0]))
        blobs[1].data[...] = rng.uniform(-0.1, 0.1, blobs[1].data.shape)


def test_streams_share_one_blob():
    net = net_from_spec(netgen.deploy_pair(size=SMALL))
    net.params["conv1"][0].data[...] = 0.25
    assert np.all(net.params["conv1_p"][0].data == 0.25)
    net.params["conv2_p"][1].data[...] = -3
    assert np.all(net.params["conv2"][1].data == -3)


def test_cross_source_stream_is_not_shared():
    net = net_from_spec(netgen.mtdnet_cross(data="input", batch=1, size=SMALL), caffe.TRAIN)
    before = np.array(net.params["cros_conv1"][0].data)
    net.params["conv1"][0].data[...] += 1
    np.testing.assert_array_equal(net.params["cros_conv1"][0].data, before)


@pytest.mark.parametrize("name,size", [(n, SMALL) for n in netgen.TRAIN_NETS] + [("mtdnet", 227)])
def test_train_net_forward_backward(name, size):
    net = net_from_spec(netgen.TRAIN_NETS[name](data="input", batch=1 if size == 227 else 2,
                                                size=size), caffe.TRAIN)
    _fill_inputs(net)
    out = net.forward()
    losses = [k for k in out if "loss" in k]
    assert losses and all(np.isfinite(out[k]).all() and out[k] > 0 for k in losses)
    net.backward()
    assert np.abs(net.params["conv1"][0].diff).sum() > 0  # gradients reach the shared trunk
    if name == "mtdnet":
        # norm2 is 13×13 at 227 (paper: "256∗13∗13"); the pairs concatenate to 512 channels
        if size == 227:
            assert net.blobs["norm2"].data.shape[1:] == (256, 13, 13)
        assert net.blobs["concat"].data.shape[1] == 512


def _same_label_loss(net):
    """Caffe's ContrastiveLoss term of the XNOR-1 pairs: Σ d²/2 over them / 2N."""
    label = net.blobs["xnor_label"].data.ravel()
    a = net.blobs["normfc7"].data.reshape(len(label), -1)
    b = net.blobs["cros_normfc7_db"].data.reshape(len(label), -1)
    d2 = ((a - b) ** 2).sum(1)
    assert 0 < label.sum() < len(label)  # both kinds of pair are present
    return float((d2 * (label == 1)).sum() / (2 * len(label)))


def test_cross_domain_contrastive_loss_decreases(tmp_path, monkeypatch):
    # Train the contrastive term alone (other loss weights 0) on fixed data,
    # without dropout's noise.
    monkeypatch.setitem(netgen.LOSS_WEIGHTS, "triplet", 0.0)
    monkeypatch.setitem(netgen.LOSS_WEIGHTS, "softmax", 0.0)
    monkeypatch.setattr(netgen, "DROPOUT", 0.0)
    net_path = tmp_path / "cross.prototxt"
    net_path.write_text(str(netgen.mtdnet_cross(data="input", batch=2, size=SMALL).to_proto()))
    solver = caffe_pb2.SolverParameter()
    text_format.Merge(schedules.to_text(schedules.solver_param(str(net_path), 0.05, 10)), solver)
    solver.random_seed = 1
    solver_path = tmp_path / "solver.prototxt"
    solver_path.write_text(text_format.MessageToString(solver))
    caffe_env.set_mode(None)
    s = caffe.SGDSolver(str(solver_path))
    _fill_inputs(s.net)
    # Streams initialised apart (not copied), so same-label pairs start far
    # from each other and the test sees them pulled together.
    src_before = np.array(s.net.params["cros_fc7"][0].data)

    losses, same = [], []
    for _ in range(6):
        s.step(1)
        losses.append(float(s.net.blobs["contrastloss"].data))
        same.append(_same_label_loss(s.net))
    assert losses[-1] < 0.8 * losses[0], losses
    # the pairs labelled "same" (XNOR 1) are pulled together: their part of
    # the contrastive loss, d²/2 each, falls
    assert same[-1] < 0.8 * same[0], same
    # the source stream stays fixed (lr_mult 0, as in the authors' net)
    np.testing.assert_array_equal(s.net.params["cros_fc7"][0].data, src_before)


@pytest.fixture(scope="module")
def cir_weights(tmp_path_factory):
    net = net_from_spec(netgen.deploy_pair(size=SMALL))
    _randomise(net, seed=3)
    path = str(tmp_path_factory.mktemp("cir") / "pair.caffemodel")
    net.save(path)
    # and the ranking layer of the multi-task model, which MTDnet-trp needs
    feat = net_from_spec(netgen.deploy_feat(size=SMALL))
    _randomise(feat, seed=4)
    feat.save(path + ".feat")
    model, extra = (caffe_pb2.NetParameter.FromString(open(p, "rb").read())
                    for p in (path, path + ".feat"))
    model.layer.extend(l for l in extra.layer if l.name == "feat")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def _images(n, seed):
    # unit-range pixels keep the He-scaled random net's logits moderate (no saturation)
    return np.random.RandomState(seed).uniform(0, 1, (n, 3, SMALL, SMALL)).astype(np.float32)


def test_cir_batched_equals_one_pair_at_a_time(cir_weights):
    trunk, head, pair = cir.load_nets(cir_weights, SMALL)
    probe, gallery = _images(3, 1), _images(4, 2)
    naive = cir.naive_pair_scores(pair, probe, gallery)
    assert naive.std() > 1e-3  # the test would be empty if all scores were equal
    fast = cir.cir_scores(trunk, head, probe, gallery, passes=1, batch=5)  # batches cross rows
    np.testing.assert_allclose(fast, naive, rtol=1e-4, atol=1e-5)
    both = cir.cir_scores(trunk, head, probe, gallery, passes=2, batch=7)
    np.testing.assert_allclose(both, (naive + cir.naive_pair_scores(pair, gallery, probe).T) / 2,
                               rtol=1e-4, atol=1e-5)


def test_cir_eight_passes_average_flips(cir_weights):
    trunk, head, pair = cir.load_nets(cir_weights, SMALL)
    probe, gallery = _images(2, 4), _images(2, 5)
    flip = lambda x: np.ascontiguousarray(x[..., ::-1])  # noqa: E731
    expected = np.zeros((2, 2))
    for p in (probe, flip(probe)):
        for g in (gallery, flip(gallery)):
            expected += cir.naive_pair_scores(pair, p, g) + cir.naive_pair_scores(pair, g, p).T
    np.testing.assert_allclose(cir.cir_scores(trunk, head, probe, gallery, passes=8),
                               expected / 8, rtol=1e-4, atol=1e-5)


def test_trp_distances_are_euclidean_of_features(cir_weights):
    trunk, _, _ = cir.load_nets(cir_weights, SMALL)
    probe, gallery = _images(2, 6), _images(3, 7)
    d = cir.trp_distances(trunk, probe, gallery)
    fp, fg = cir.ranking_features(trunk, probe), cir.ranking_features(trunk, gallery)
    np.testing.assert_allclose(d[1, 2], np.linalg.norm(fp[1] - fg[2]), rtol=1e-4)


def _small_caffenet(tmp_path, side=67):
    """bvlc_reference_caffenet's canonical deploy.prototxt at a small input,
    random conv1–conv2, saved as a .caffemodel."""
    param = caffe_pb2.NetParameter()
    with open(os.path.join(caffe_env.caffe_models_dir(), "bvlc_reference_caffenet",
                           "deploy.prototxt")) as f:
        text_format.Merge(f.read(), param)
    param.layer[0].input_param.shape[0].dim[:] = [1, 3, side, side]
    proto = tmp_path / "caffenet.prototxt"
    proto.write_text(text_format.MessageToString(param))
    net = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.RandomState(7)
    for name in ("conv1", "conv2"):
        for b in net.params[name]:
            b.data[...] = rng.randn(*b.data.shape)
    path = str(tmp_path / "caffenet.caffemodel")
    net.save(path)
    return path, {k: [np.array(b.data) for b in net.params[k]] for k in ("conv1", "conv2")}


def test_caffenet_init_loads_conv1_conv2_by_name(tmp_path):
    path, expected = _small_caffenet(tmp_path)
    net = net_from_spec(netgen.deploy_pair(size=SMALL))
    conv3 = np.array(net.params["conv3"][0].data)
    assert mtdnet_init.init_from_caffenet(net, path) == ["conv1", "conv2"]
    for name in ("conv1", "conv2", "conv1_p", "conv2_p"):
        for got, want in zip(net.params[name], expected[name.replace("_p", "")]):
            np.testing.assert_array_equal(got.data, want)  # bit-identical, both streams
    np.testing.assert_array_equal(net.params["conv3"][0].data, conv3)  # conv3 keeps its filler


def test_caffenet_init_rejects_wrong_shapes(tmp_path):
    path, _ = _small_caffenet(tmp_path)
    net = net_from_spec(netgen.deploy_head(size=SMALL))
    with pytest.raises(ValueError, match="no layer 'conv1'"):
        mtdnet_init.init_from_caffenet(net, path)


def test_trained_model_loads_by_name_and_source_copies_target(tmp_path):
    train = net_from_spec(netgen.mtdnet(data="input", batch=1, size=SMALL), caffe.TRAIN)
    _randomise(train, seed=9)
    path = str(tmp_path / "mtdnet.caffemodel")
    train.save(path)
    cross = net_from_spec(netgen.mtdnet_cross(data="input", batch=1, size=SMALL), caffe.TRAIN,
                          weights=path)
    copied = mtdnet_init.copy_target_to_source(cross)
    assert "cros_conv1" in copied and "cros_fc8" in copied
    for name in ("conv1", "conv3", "feat", "fc7", "fc8"):
        np.testing.assert_array_equal(cross.params[name][0].data, train.params[name][0].data)
    for name in ("conv1", "conv3", "fc7", "fc8"):
        np.testing.assert_array_equal(cross.params["cros_" + name][0].data,
                                      train.params[name][0].data)


def test_cir_scores_file_reaches_the_metrics(cir_weights, tmp_path):
    # mtdnet_cir over real query/gallery LMDBs (synthetic Market layout) →
    # scores.npz → tools.evaluate --matrix: the report's CMC is the one of
    # the matrix, and the matrix is the CIR score of the LMDB images.
    import json
    from tests.helpers import query_gallery_lmdbs
    from tools import evaluate
    from evaluation.cmc import single_shot_cmc

    lmdbs = query_gallery_lmdbs(tmp_path, 8, SMALL)
    scores = str(tmp_path / "scores.npz")
    mtdnet_cir.main(["--weights", cir_weights, "--query", lmdbs["query"], "--gallery", lmdbs["gallery"],
                     "--size", str(SMALL), "--passes", "2", "--trp", "--out", scores])
    with np.load(scores) as z:
        saved = {k: z[k] for k in z.files}
    trunk, head, _ = cir.load_nets(cir_weights, SMALL)
    q, g = cir._load(lmdbs["query"], SMALL, None)[0], cir._load(lmdbs["gallery"], SMALL, None)[0]
    np.testing.assert_allclose(saved["scores"], cir.cir_scores(trunk, head, q, g, passes=2),
                               rtol=1e-5, atol=1e-6)
    assert saved["scores"].shape == (len(saved["q_pids"]), len(saved["g_pids"]))

    out = tmp_path / "report"
    evaluate.main(["--matrix", scores, "--similarity", "--protocol", "single-shot",
                   "--repeats", "3", "--out", str(out)])
    with open(out / "results.json") as f:
        reported = json.load(f)["results"][0]["cmc"]
    expected = single_shot_cmc(saved["scores"], saved["q_pids"], saved["q_cams"], saved["g_pids"],
                               saved["g_cams"], repeats=3, seed=0, similarity=True)
    np.testing.assert_allclose(reported, expected)
    assert os.path.isfile(out / "cmc.png") and os.path.isfile(out / "results.md")
