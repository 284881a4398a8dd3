"""Feature extraction through a real deploy net built here with
NetSpec, over a small split of images this test writes: features equal a
direct forward of the same preprocessed images; --flip averages with the
flipped forward; weights that do not fit are refused naming the layer."""
import os

import numpy as np
import pytest
from PIL import Image

from common import caffe_env
import caffe
from caffe import layers as L, params as P
from data_prep.images import load_bgr, resize_bgr, to_net_input
from data_prep.split_format import save_split
from evaluation import features as ef
from tools import extract_features
from tests.helpers import caffemodel_without

H, W = 12, 8
BLOB = "pool/feat"      # a name with a slash, like pool5/7x7_s1


def _deploy(conv1=4):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, H, W]))
    gauss = dict(type="gaussian", std=0.3)
    n.conv1 = L.Convolution(n.data, num_output=conv1, kernel_size=3, pad=1, weight_filler=gauss,
                            bias_filler=dict(type="constant", value=0.1))
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n["conv2"] = L.Convolution(n.pool1, num_output=5, kernel_size=3, weight_filler=gauss)
    n[BLOB] = L.Pooling(n["conv2"], pool=P.Pooling.AVE, global_pooling=True)
    # A layer after the feature: extraction must stop before it.
    n.fc = L.InnerProduct(n[BLOB], num_output=2, weight_filler=gauss)
    return n


def _write_net(tmp_path, name, conv1=4):
    proto = str(tmp_path / ("%s.prototxt" % name))
    with open(proto, "w") as f:
        f.write(str(_deploy(conv1).to_proto()))
    model = str(tmp_path / ("%s.caffemodel" % name))
    caffe.Net(proto, caffe.TEST).save(model)
    return proto, model


@pytest.fixture
def fixture(tmp_path):
    caffe_env.set_mode(None)
    rng = np.random.default_rng(0)
    images = []
    for k, (pid, cam, folder) in enumerate([(1, 1, "query"), (2, 2, "query"), (1, 2, "bounding_box_test"),
                                            (2, 1, "bounding_box_test"), (0, 3, "bounding_box_test"),
                                            (1, 1, "gt_bbox")]):
        path = "%s/%04d_c%d_%d.png" % (folder, pid, cam, k)
        os.makedirs(tmp_path / folder, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 10, 3), dtype=np.uint8)).save(tmp_path / path)
        images.append({"path": path, "pid": pid, "cam": cam, "set": folder})
    split = {"format": "reid-split/1", "dataset": "market1501", "root": str(tmp_path), "images": images,
             "trials": [{"name": "trial00", "train": [], "train_labels": [], "val": [], "query": [0, 1],
                         "gallery": [2, 3, 4], "multi_query": {"0": [0, 5], "1": [1]}}],
             "protocol": {}, "seed": 0}
    split_path = str(tmp_path / "split.json")
    save_split(split, split_path)
    proto, model = _write_net(tmp_path, "net")
    return tmp_path, split, split_path, proto, model


def _run(tmp_path, split_path, proto, model, *extra):
    out = str(tmp_path / "f.npz")
    extract_features.main(["--deploy", proto, "--weights", model, "--split", split_path, "--blob",
                           BLOB, "--out", out, "--batch", "2", "--subsets", "query", "gallery",
                           "multi_query"] + list(extra))
    return ef.load_features(out)


def _direct(proto, model, split, idx, size=(H, W), flip=False):
    """Reference: one forward of the whole batch through a fresh net."""
    net = caffe.Net(proto, caffe.TEST, weights=model)
    imgs = []
    for i in idx:
        img = resize_bgr(load_bgr(os.path.join(split["root"], split["images"][i]["path"])), *size)
        top, left = (size[0] - H) // 2, (size[1] - W) // 2
        imgs.append(to_net_input(img[top:top + H, left:left + W]))
    data = np.stack(imgs)
    if flip:
        data = data[..., ::-1]
    net.blobs["data"].reshape(*data.shape)
    net.blobs["data"].data[...] = data
    net.forward()
    return net.blobs[BLOB].data.reshape(len(idx), -1).copy()


def test_features_equal_a_direct_forward(fixture):
    tmp_path, split, split_path, proto, model = fixture
    subsets, meta = _run(tmp_path, split_path, proto, model)
    assert meta["trial"] == 0 and meta["blob"] == BLOB and meta["flip"] is False
    gal = subsets["gallery"]
    np.testing.assert_array_equal(gal["index"], [2, 3, 4])
    np.testing.assert_array_equal(gal["pids"], [1, 2, 0])
    np.testing.assert_array_equal(gal["cams"], [2, 1, 3])
    assert gal["features"].shape == (3, 5) and gal["features"].dtype == np.float32
    np.testing.assert_allclose(gal["features"], _direct(proto, model, split, [2, 3, 4]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(subsets["query"]["features"], _direct(proto, model, split, [0, 1]),
                               rtol=1e-5, atol=1e-6)
    # multi_query: every image a query pools (the query itself included).
    np.testing.assert_array_equal(subsets["multi_query"]["index"], [0, 1, 5])


def test_flip_averages_the_flipped_forward(fixture):
    tmp_path, split, split_path, proto, model = fixture
    subsets, meta = _run(tmp_path, split_path, proto, model, "--flip")
    plain = _direct(proto, model, split, [2, 3, 4])
    flipped = _direct(proto, model, split, [2, 3, 4], flip=True)
    assert np.abs(plain - flipped).max() > 1e-3          # the net is not mirror-symmetric
    np.testing.assert_allclose(subsets["gallery"]["features"], (plain + flipped) / 2, rtol=1e-5, atol=1e-6)
    assert meta["flip"] is True


def test_resize_then_centre_crop(fixture):
    tmp_path, split, split_path, proto, model = fixture
    subsets, _ = _run(tmp_path, split_path, proto, model, "--height", "16", "--width", "12")
    np.testing.assert_allclose(subsets["query"]["features"],
                               _direct(proto, model, split, [0, 1], size=(16, 12)), rtol=1e-5, atol=1e-6)


def test_weights_that_do_not_fit_are_refused(fixture):
    tmp_path, split, split_path, proto, model = fixture
    _, wrong = _write_net(tmp_path, "wide", conv1=6)       # conv1: 6 filters, the net has 4
    # main raises (as the library under it does); cli.run makes it one line.
    with pytest.raises(ef.ExtractError, match=r"^layer 'conv1' blob 0: .* shape \(6, 3, 3, 3\), the net \(4, 3, 3, 3\)$"):
        _run(tmp_path, split_path, proto, wrong)
    # Weights lacking a parametrised layer of the net (conv2 dropped from the file).
    partial = caffemodel_without(model, str(tmp_path / "partial.caffemodel"),
                                 lambda layer: layer.name == "conv2")
    with pytest.raises(ef.ExtractError, match="layer 'conv2' of the net has no weights"):
        ef.load_net(proto, partial)


def test_unknown_blob_is_refused_and_nothing_written(fixture):
    tmp_path, split, split_path, proto, model = fixture
    out = str(tmp_path / "x.npz")
    with pytest.raises(ef.ExtractError, match="blob 'nope' is not in the net"):
        ef.extract_to_file(out, proto, model, split_path, blob="nope")
    assert not os.path.exists(out)
