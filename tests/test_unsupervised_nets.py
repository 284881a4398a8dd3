"""Geng16 §5.6 / Table 9 alternatives to co-training through real pycaffe
(networks/unsupervised.py, unsupervised/autoencoder.py): the
autoencoder's loss is Eq. 4 averaged over the batch, training lowers it,
pretrained weights are really the fine-tuning's start and the code is
f_e(x); the domain-adversarial net feeds only the source rows to the SID
loss, labels the domains 0/1 and reverses the domain gradient."""
import os

import numpy as np
import pytest
from google.protobuf import text_format

import caffe
from caffe.proto import caffe_pb2
from common.atomic import Stale
from tests.helpers import assert_committed_prototxt_current, net_from_spec
from networks import geng16, unsupervised
from training.surgery import read_blobs
from unsupervised import autoencoder as ae

DIM, HIDDEN = 16, 8
ACTIVATIONS = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0),
               "none": lambda z: z}


def test_committed_prototxt_is_current():
    assert_committed_prototxt_current(unsupervised)


def test_committed_nets_carry_the_paper_and_our_values():
    files = unsupervised.generate()
    nets = {}
    for name in ("autoencoder_train", "autoencoder_deploy", "domain_adversarial_train"):
        nets[name] = caffe_pb2.NetParameter()
        text_format.Merge(files[name + ".prototxt"], nets[name])
    ae_layers = {l.name: l for l in nets["autoencoder_train"].layer}
    assert ae_layers["encode"].inner_product_param.num_output == 512
    assert ae_layers["decode"].inner_product_param.num_output == 1024
    assert ae_layers["loss"].type == "EuclideanLoss"
    assert list(ae_layers["loss"].bottom) == ["decode", "feature"]
    assert [l.name for l in nets["autoencoder_deploy"].layer] == ["feature", "encode", "encode_act"]
    da = {l.name: l for l in nets["domain_adversarial_train"].layer}
    assert '"k": 32, "m": 2' in da["source_data"].python_param.param_str
    assert '"k": 64, "m": 1' in da["target_data"].python_param.param_str
    assert da["grl"].python_param.param_str == '{"coeff": 1.0}'
    assert {l.name: l.loss_weight[0] for l in da.values() if l.loss_weight} == {
        "main/sid_loss": 1.0, "domain_loss": 1.0}
    assert da["cls_main_751"].inner_product_param.num_output == 751
    assert not any(name.startswith(("loss1/", "loss2/", "aux")) for name in da)
    solver = caffe_pb2.SolverParameter()
    text_format.Merge(files["domain_adversarial_solver.prototxt"], solver)
    assert (solver.net, solver.max_iter) == ("domain_adversarial_train.prototxt", 20000)


# --- autoencoder -------------------------------------------------------------

def _features(n, seed, rank=3):
    """Non-negative rows on a low-rank subspace, like pooled ReLU features."""
    rng = np.random.RandomState(seed)
    basis = np.abs(np.random.RandomState(100).randn(rank, DIM))
    return (np.abs(rng.randn(n, rank)).dot(basis)).astype(np.float32)


def _by_hand(x, blobs, activation):
    we, be = [np.asarray(b.data).reshape(b.shape.dim) for b in blobs["encode"]]
    wd, bd = [np.asarray(b.data).reshape(b.shape.dim) for b in blobs["decode"]]
    code = ACTIVATIONS[activation](x.astype(np.float64).dot(we.T) + be)
    recon = code.dot(wd.T) + bd
    return code, 0.5 * np.mean(np.sum((x - recon) ** 2, axis=1))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_euclidean_loss_is_eq4_averaged_over_the_batch(activation, tmp_path):
    net = net_from_spec(unsupervised.autoencoder(DIM, HIDDEN, batch=5, activation=activation))
    x = _features(5, seed=1)
    net.blobs["feature"].data[...] = x
    net.forward()
    path = str(tmp_path / "ae.caffemodel")
    net.save(path)
    _, loss = _by_hand(x, read_blobs(path), activation)
    assert float(net.blobs["loss"].data) == pytest.approx(loss, rel=1e-5)
    assert ae.reconstruction_loss(x, path, HIDDEN, activation) == pytest.approx(loss, rel=1e-5)


def test_training_lowers_the_reconstruction_loss_and_encode_is_the_code(tmp_path):
    x = _features(200, seed=2)
    init = ae.train_autoencoder(x, str(tmp_path / "init"), 0, hidden=HIDDEN)
    trained = ae.train_autoencoder(x, str(tmp_path / "run"), 300, batch=16, hidden=HIDDEN)
    before = ae.reconstruction_loss(x, init, HIDDEN)
    after = ae.reconstruction_loss(x, trained, HIDDEN)
    assert after < 0.5 * before, (before, after)
    # a finished run is reused for the same features and arguments only
    mtime = os.path.getmtime(trained)
    assert ae.train_autoencoder(x, str(tmp_path / "run"), 300, batch=16, hidden=HIDDEN) == trained
    assert os.path.getmtime(trained) == mtime
    with pytest.raises(Stale, match="run/autoencoder.caffemodel was made with iters = 300, this "
                                    "run has 7"):
        ae.train_autoencoder(x, str(tmp_path / "run"), 7, batch=16, hidden=HIDDEN)
    with pytest.raises(Stale, match="was made with features = "):
        ae.train_autoencoder(x[:5], str(tmp_path / "run"), 300, batch=16, hidden=HIDDEN)
    assert os.path.getmtime(trained) == mtime
    retrained = ae.train_autoencoder(x, str(tmp_path / "rerun"), 300, batch=16, hidden=HIDDEN)
    ae.train_autoencoder(x, str(tmp_path / "rerun"), 7, batch=16, hidden=HIDDEN, recompute=True)
    assert ae.reconstruction_loss(x, retrained, HIDDEN) > 1.5 * after  # 7 steps, not 300
    codes = ae.encode(x[:7], trained, HIDDEN)
    expected, _ = _by_hand(x[:7], read_blobs(trained), "sigmoid")
    assert codes.shape == (7, HIDDEN)
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="layer 'encode'"):
        ae.encode(x, trained, hidden=HIDDEN // 2)


def test_fine_tuning_starts_from_the_pretrained_weights(tmp_path):
    source, target = _features(200, seed=3), _features(60, seed=4)
    pre = ae.train_autoencoder(source, str(tmp_path / "pre"), 300, batch=16, hidden=HIDDEN)
    # lr 0: the fine-tuned model is the pretrained one, not the fresh init of the same seed
    still = ae.train_autoencoder(target, str(tmp_path / "still"), 1, base_lr=0, weights=pre,
                                 hidden=HIDDEN)
    fresh = ae.train_autoencoder(target, str(tmp_path / "fresh"), 1, base_lr=0, hidden=HIDDEN)
    pre_loss = ae.reconstruction_loss(target, pre, HIDDEN)
    assert ae.reconstruction_loss(target, still, HIDDEN) == pytest.approx(pre_loss, rel=1e-6)
    assert ae.reconstruction_loss(target, fresh, HIDDEN) > 2 * pre_loss
    # and a few steps from the pretraining beat as many from scratch (§5.6's reason to pretrain)
    tuned = ae.train_autoencoder(target, str(tmp_path / "tuned"), 20, batch=16, weights=pre,
                                 hidden=HIDDEN)
    scratch = ae.train_autoencoder(target, str(tmp_path / "scratch"), 20, batch=16, hidden=HIDDEN)
    assert (ae.reconstruction_loss(target, tuned, HIDDEN)
            < 0.5 * ae.reconstruction_loss(target, scratch, HIDDEN))


def test_minibatches_visit_every_row_once_per_epoch():
    batches = ae.minibatches(10, 4, np.random.RandomState(0))
    rows = np.concatenate([next(batches) for _ in range(5)])   # two epochs
    assert sorted(rows[:10]) == list(range(10)) and sorted(rows[10:20]) == list(range(10))


# --- domain-adversarial CNN ------------------------------------------------

K, M, TARGET_BATCH, NUM_IDS, COEFF = 2, 2, 3, 5, 0.5
SOURCE_LABELS = [1, 1, 4, 4]


@pytest.fixture(scope="module")
def domain_net():
    """A dgdnet-based net on small inputs, after one forward and backward;
    fewer target than source rows, so a slice at the wrong row shows."""
    caffe.set_random_seed(0)
    net = net_from_spec(unsupervised.domain_adversarial(
        "dgdnet", NUM_IDS, size=(72, 28), k=K, m=M, target_batch=TARGET_BATCH, coeff=COEFF,
        data="input"), caffe.TRAIN)
    rng = np.random.RandomState(0)
    for name in ("source_data", "target_data"):
        net.blobs[name].data[...] = rng.uniform(-50, 50, net.blobs[name].data.shape)
    net.blobs["source_label"].data[...] = SOURCE_LABELS
    net.blobs["target_label"].data[...] = [0, 2, 3]
    net.forward()
    net.backward()
    return net


def test_domain_labels_are_0_for_source_and_1_for_target_rows(domain_net):
    np.testing.assert_array_equal(domain_net.blobs["domain_label"].data,
                                  [0] * (K * M) + [1] * TARGET_BATCH)


def test_sid_loss_sees_only_the_source_rows(domain_net):
    net = domain_net
    feature = net.blobs[geng16.FEATURE["dgdnet"]].data
    assert feature.shape[0] == K * M + TARGET_BATCH
    np.testing.assert_array_equal(net.blobs["source_feature"].data, feature[:K * M])
    np.testing.assert_array_equal(net.blobs["target_feature"].data, feature[K * M:])
    assert net.bottom_names["main/sid_drop"] == ["source_feature"]
    cls = geng16.cls_name("main", NUM_IDS)
    assert net.bottom_names["main/sid_loss"] == [cls, "source_label"]
    readers = [layer for layer, bottoms in net.bottom_names.items() if "target_label" in bottoms]
    assert readers == ["silence_target_label"]
    # the loss is the softmax loss of the source rows' scores against their labels
    scores = net.blobs[cls].data.astype(np.float64)
    assert scores.shape == (K * M, NUM_IDS)
    logp = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    expected = -np.mean(logp[np.arange(K * M), SOURCE_LABELS])
    assert float(net.blobs["main/sid_loss"].data) == pytest.approx(expected, rel=1e-5)
    # …and its gradient reaches the feature on the source rows only
    to_slice = net.blobs[net.bottom_names["source_feature"][0]].diff
    assert np.abs(to_slice[:K * M]).sum() > 0
    np.testing.assert_array_equal(to_slice[K * M:], 0)


def test_domain_gradient_reaches_the_feature_reversed(domain_net):
    net = domain_net
    assert net.bottom_names["domain_loss"] == ["domain_cls", "domain_label"]
    top = net.blobs["grl"].diff
    bottom = net.blobs[net.bottom_names["grl"][0]].diff
    np.testing.assert_array_equal(net.blobs["grl"].data, net.blobs[geng16.FEATURE["dgdnet"]].data)
    assert np.all(np.abs(top).sum(axis=1) > 0)          # every row, source and target
    np.testing.assert_allclose(bottom, -COEFF * top, rtol=1e-6, atol=1e-12)
    assert np.abs(net.params["conv1"][0].diff).sum() > 0


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="base"):
        unsupervised.domain_adversarial(base="vgg")
    with pytest.raises(ValueError, match="data"):
        unsupervised.domain_adversarial(data="hdf5")
    with pytest.raises(ValueError, match="activation"):
        unsupervised.autoencoder(activation="tanh")
