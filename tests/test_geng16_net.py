"""Geng16 nets through real pycaffe: the GoogLeNet base equals
bvlc_googlenet layer by layer; a .caffemodel of the canonical net loads by
name into the train and deploy nets bit-identically; the six-loss train net
runs forward/backward with total = weighted sum; surgery and fetch errors."""
import hashlib
import os

import numpy as np
import pytest
from google.protobuf import text_format

import caffe
from caffe.proto import caffe_pb2
from common import caffe_env
from common.caffe_env import net_from_spec
from training import fetch_weights, surgery
from networks import geng16

CANONICAL = os.path.join(caffe_env.caffe_models_dir(), "bvlc_googlenet", "train_val.prototxt")
HEAD_ONLY = ("Data", "Dropout", "SoftmaxWithLoss", "Accuracy")
CLASSIFIERS = ("loss1/classifier", "loss2/classifier", "loss3/classifier")
LAYER_PARAMS = ("param", "convolution_param", "pooling_param", "lrn_param", "inner_product_param",
                "concat_param", "bottom", "top")
NUM_IDS = 5


def _canonical_param():
    p = caffe_pb2.NetParameter()
    with open(CANONICAL) as f:
        text_format.Merge(f.read(), p)
    return p


def _base_layers(param):
    return [l for l in param.layer if l.type not in HEAD_ONLY and l.name not in CLASSIFIERS]


@pytest.fixture(scope="module")
def canonical_model(tmp_path_factory):
    """bvlc_googlenet (Input data instead of its LMDBs) with random weights, saved."""
    p = _canonical_param()
    layers = [l for l in p.layer if l.type != "Data"]
    del p.layer[:]
    inp = p.layer.add(name="data", type="Input")
    inp.top.extend(["data", "label"])
    inp.input_param.shape.add(dim=[1, 3, 224, 224])
    inp.input_param.shape.add(dim=[1])
    p.layer.extend(layers)
    path = str(tmp_path_factory.mktemp("canonical") / "net.prototxt")
    with open(path, "w") as f:
        f.write(str(p))
    net = caffe.Net(path, caffe.TEST)
    rng = np.random.RandomState(0)
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = rng.uniform(-0.05, 0.05, b.data.shape)
    model = path.replace(".prototxt", ".caffemodel")
    net.save(model)
    return net, model


def test_base_matches_bvlc_googlenet_layer_by_layer():
    canonical = _base_layers(_canonical_param())
    ours = {l.name: l for l in geng16.net_param(geng16.geng16(data="input", k=2), "t").layer}
    for layer in canonical:
        assert layer.name in ours, "missing layer %s" % layer.name
        mine = ours[layer.name]
        assert mine.type == layer.type, layer.name
        for field in LAYER_PARAMS:
            assert getattr(mine, field) == getattr(layer, field), (layer.name, field)
    # the deploy net is the main path of the same base
    deploy = {l.name: l for l in geng16.net_param(geng16.deploy(), "d").layer}
    for layer in canonical:
        if not layer.name.startswith(("loss1/", "loss2/")):
            assert deploy[layer.name].convolution_param == layer.convolution_param


def test_canonical_weights_load_bit_identical(canonical_model):
    ref, model = canonical_model
    net = net_from_spec(geng16.geng16(data="input", k=2, num_ids=NUM_IDS), caffe.TRAIN)
    report = surgery.load_weights(net, model)
    expected = [name for name in ref.params if name not in CLASSIFIERS]
    assert report["copied"] == expected
    assert sorted(report["unused"]) == sorted(CLASSIFIERS)
    assert {"cls_main_5", "cls_aux1_5", "cls_aux2_5", "main/pv_fc", "main/pv_cls"} <= set(
        report["initialised"])
    for name in expected:
        for ours, theirs in zip(net.params[name], ref.params[name]):
            np.testing.assert_array_equal(ours.data, theirs.data)
    # Caffe's own by-name copy into the deploy net gives the same blobs
    deploy = net_from_spec(geng16.deploy(), weights=model)
    for name in deploy.params:
        for ours, theirs in zip(deploy.params[name], ref.params[name]):
            np.testing.assert_array_equal(ours.data, theirs.data)
    # deploy feature: 1024-D pool5/7x7_s1, the canonical net's for the same image
    image = np.random.RandomState(1).uniform(-100, 100, (1, 3, 224, 224))
    deploy.blobs["data"].data[...] = image
    ref.blobs["data"].data[...] = image
    deploy.forward()
    ref.forward()
    feat = deploy.blobs["pool5/7x7_s1"].data
    assert feat.shape == (1, 1024, 1, 1)
    np.testing.assert_allclose(feat, ref.blobs["pool5/7x7_s1"].data, rtol=1e-5, atol=1e-6)


def _loss_weights(spec):
    return {l.top[0]: l.loss_weight[0] for l in geng16.net_param(spec, "t").layer if l.loss_weight}


def test_six_loss_train_net_forward_backward(canonical_model):
    _, model = canonical_model
    k, m = 2, 2
    spec = geng16.geng16(data="input", k=k, m=m, num_ids=NUM_IDS)
    weights = _loss_weights(spec)
    assert weights == {"main/sid_loss": 1.0, "main/pv_loss": 3.0,
                       "aux1/sid_loss": pytest.approx(0.3), "aux1/pv_loss": pytest.approx(0.9),
                       "aux2/sid_loss": pytest.approx(0.3), "aux2/pv_loss": pytest.approx(0.9)}
    net = net_from_spec(spec, caffe.TRAIN)
    surgery.load_weights(net, model)
    rng = np.random.RandomState(0)
    net.blobs["data"].data[...] = rng.uniform(-100, 100, net.blobs["data"].data.shape)
    net.blobs["label"].data[...] = [3, 3, 0, 0]
    total = net._forward(0, len(net.layers) - 1)   # Caffe's own weighted sum of the losses
    losses = {name: float(net.blobs[name].data.ravel()[0]) for name in weights}
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    assert total == pytest.approx(sum(weights[n] * losses[n] for n in weights), rel=1e-5)
    assert net.blobs["main/pair_a"].data.shape == (2 * 4, 1024)   # K=2, M=2: 2 pos, 4 neg → 8
    net.backward()
    for name in ("conv1/7x7_s2", "loss1/fc", "cls_main_5", "main/pv_fc", "aux2/pv_cls"):
        assert np.abs(net.params[name][0].diff).sum() > 0, name


def test_identity_set_change_reinitialises_only_the_classifiers(tmp_path):
    small = dict(data="input", k=2, size=64)     # loss{1,2}/fc shapes follow; fine within one size
    old = net_from_spec(geng16.geng16(num_ids=7, **small), caffe.TRAIN)
    old.params["main/pv_fc"][0].data[...] = 0.5
    path = str(tmp_path / "old.caffemodel")
    old.save(path)
    new = net_from_spec(geng16.geng16(num_ids=NUM_IDS, **small), caffe.TRAIN)
    report = surgery.load_weights(new, path)
    assert {"cls_main_5", "cls_aux1_5", "cls_aux2_5"} == set(report["initialised"])
    assert {"cls_main_7", "cls_aux1_7", "cls_aux2_7"} == set(report["unused"])
    assert np.all(new.params["main/pv_fc"][0].data == 0.5)


def test_surgery_refuses_a_shape_mismatch_naming_the_layer(canonical_model):
    _, model = canonical_model
    net = net_from_spec(geng16.geng16(data="input", k=2, size=128), caffe.TRAIN)
    before = np.array(net.params["conv1/7x7_s2"][0].data)
    with pytest.raises(ValueError, match=r"layer 'loss1/fc' blob 0: .* shape \(1024, 2048\), "
                                         r"the net \(1024, 512\)"):
        surgery.load_weights(net, model)
    np.testing.assert_array_equal(net.params["conv1/7x7_s2"][0].data, before)  # nothing copied


def test_surgery_rejects_a_file_that_is_not_a_caffemodel(tmp_path):
    bad = tmp_path / "x.caffemodel"
    bad.write_bytes(b"\xff\xfe not a protobuf")
    net = net_from_spec(geng16.deploy(base="dgdnet"))
    with pytest.raises(ValueError, match="not a readable .caffemodel"):
        surgery.load_weights(net, str(bad))


def test_step1_freezes_all_but_the_classifiers():
    param = geng16.net_param(geng16.geng16(data="input", k=2), "s1", step=1)
    for layer in param.layer:
        for p in layer.param:
            assert (p.lr_mult > 0) == layer.name.startswith("cls_"), layer.name


def test_dgdnet_base_trains_with_two_losses():
    spec = geng16.geng16(base="dgdnet", data="input", k=2, num_ids=NUM_IDS)
    assert set(_loss_weights(spec)) == {"main/sid_loss", "main/pv_loss"}
    net = net_from_spec(spec, caffe.TRAIN)
    net.blobs["data"].data[...] = np.random.RandomState(0).uniform(-50, 50, net.blobs["data"].data.shape)
    net.blobs["label"].data[...] = [1, 1, 4, 4]
    out = net.forward()
    assert all(np.isfinite(v).all() for v in out.values())
    net.backward()
    assert np.abs(net.params["conv1"][0].diff).sum() > 0
    deploy = net_from_spec(geng16.deploy(base="dgdnet"))
    deploy.forward()
    assert deploy.blobs["fc7"].data.shape == (1, 256)


def test_generator_rejects_bad_variants():
    with pytest.raises(ValueError, match="losses"):
        geng16.geng16(losses=("sid", "xx"))
    with pytest.raises(ValueError, match="pv_dropout"):
        geng16.geng16(pv_dropout="half")
    with pytest.raises(ValueError, match="base"):
        geng16.geng16(base="vgg")


def _fake_models(tmp_path, payload):
    d = tmp_path / "models" / "bvlc_googlenet"
    d.mkdir(parents=True)
    src = tmp_path / "remote.caffemodel"
    src.write_bytes(payload)
    (d / "readme.md").write_text(
        "---\nname: test\ncaffemodel: bvlc_googlenet.caffemodel\ncaffemodel_url: %s\n"
        "sha1: %s\n---\ntext\n" % (src.as_uri(), hashlib.sha1(b"expected").hexdigest()))
    return str(tmp_path / "models")


def test_fetch_weights_verifies_sha1(tmp_path):
    models = _fake_models(tmp_path, b"expected")
    dest = str(tmp_path / "w")
    path = fetch_weights.fetch("bvlc_googlenet", dest, models)
    assert open(path, "rb").read() == b"expected"
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(ValueError, match="SHA1 .* the readme says"):
        fetch_weights.fetch("bvlc_googlenet", str(tmp_path / "w2"), _fake_models(bad, b"corrupt"))
    assert not os.path.exists(str(tmp_path / "w2" / "bvlc_googlenet.caffemodel"))


def test_fetch_weights_offline_message(tmp_path):
    models = _fake_models(tmp_path, b"expected")

    def offline(url, timeout):
        raise OSError("Name or service not known")
    dest = str(tmp_path / "w")
    with pytest.raises(RuntimeError) as err:
        fetch_weights.fetch("bvlc_googlenet", dest, models, opener=offline)
    assert "remote.caffemodel" in str(err.value)
    assert os.path.join(dest, "bvlc_googlenet.caffemodel") in str(err.value)


def test_canonical_readmes_parse():
    for name in fetch_weights.MODELS:
        meta = fetch_weights.read_readme(name)
        assert meta["caffemodel_url"].startswith("http") and len(meta["sha1"]) == 40


def test_fetch_weights_removes_a_killed_download(tmp_path):
    # a download SIGKILLed half-way leaves its temporary beside the target;
    # the next fetch of the same model removes it
    from tests.test_atomic import dead_pid
    models = _fake_models(tmp_path, b"expected")
    dest = tmp_path / "w"
    dest.mkdir()
    killed = dest / (".bvlc_googlenet.caffemodel.tmp-%d-k1" % dead_pid())
    killed.write_bytes(b"expe")
    path = fetch_weights.fetch("bvlc_googlenet", str(dest), models)
    assert open(path, "rb").read() == b"expected"
    assert sorted(os.listdir(dest)) == ["bvlc_googlenet.caffemodel"]
