"""Two-stepped fine-tuning (Geng16 §4.1, Table 6) on a real DGDNet
Geng16 net over a synthetic Market-layout LMDB: after step 1 every layer but
the new classifiers is bit-identical (BatchNorm statistics included) and the
classifiers changed; step 2 then changes the base too. A step 1 without
pretrained BatchNorm statistics is refused in one line."""
import numpy as np
import pytest

from common import caffe_env
from training import two_step
from training.surgery import read_blobs
from tests.helpers import caffemodel_without

K, M = 4, 2


@pytest.fixture(scope="module")
def lmdb(tmp_path_factory):
    from data_prep import market1501, synthetic
    from data_prep.lmdb_builder import build_lmdb
    tmp = tmp_path_factory.mktemp("two_step")
    split = market1501.parse(synthetic.generate(str(tmp / "syn"), num_ids=12, seed=2, quiet=True))
    path = build_lmdb(split, str(tmp / "train.lmdb"), 160, 64, verbose=False)
    num_ids = len({im for im in split["trials"][0]["train_labels"]})
    return path, num_ids


def _blobs(path):
    return {name: [np.array(b.data) for b in blobs] for name, blobs in read_blobs(path).items()}


def _net_kw(lmdb, num_ids):
    return dict(base="dgdnet", num_ids=num_ids, source=lmdb, k=K, m=M, seed=3)


def test_step1_changes_only_the_classifier(lmdb, tmp_path):
    caffe_env.set_mode(None)
    path, num_ids = lmdb
    kw = _net_kw(path, num_ids)
    # a "previous stage": a few one-stepped iterations from the fillers, so
    # that BatchNorm has statistics to keep
    pretrained = two_step.fine_tune(str(tmp_path / "pre"), dict(kw, num_ids=num_ids + 1),
                                    None, iters=(0, 3), two_step=False, progress=False)
    final = two_step.fine_tune(str(tmp_path / "ft"), kw, pretrained, iters=(3, 2),
                               progress=False)
    init = _blobs(str(tmp_path / "ft" / "step1" / "init.caffemodel"))
    after1 = _blobs(str(tmp_path / "ft" / "step1" / "final.caffemodel"))
    after2 = _blobs(final)
    cls = [n for n in init if n.startswith("cls_")]
    assert cls == ["cls_main_%d" % num_ids]
    # the previous stage's classifier had another N: not loaded, new fillers
    assert "cls_main_%d" % (num_ids + 1) in _blobs(pretrained)
    bn = [n for n in init if n.endswith("_bn")]
    assert bn and all(np.any(init[n][0] != 0) for n in bn)  # statistics came from the pretrain
    for name in init:
        same = all(np.array_equal(a, b) for a, b in zip(init[name], after1[name]))
        assert same != (name in cls), name
    changed2 = [n for n in init if not all(np.array_equal(a, b) for a, b in zip(after1[n], after2[n]))]
    assert "conv1" in changed2 and bn[0] in changed2  # step 2 trains (and re-estimates) the base


def test_step1_refuses_weights_without_batchnorm_statistics(lmdb, tmp_path):
    caffe_env.set_mode(None)
    path, num_ids = lmdb
    import caffe
    from networks import geng16
    # a model with every layer but the BatchNorm ones
    net = caffe_env.net_from_spec(geng16.geng16(base="dgdnet", data="input", k=K, m=M,
                                                num_ids=num_ids), caffe.TRAIN)
    net.save(str(tmp_path / "full.caffemodel"))
    partial = caffemodel_without(str(tmp_path / "full.caffemodel"),
                                 str(tmp_path / "partial.caffemodel"),
                                 lambda layer: layer.type == "BatchNorm")
    with pytest.raises(ValueError, match="BatchNorm statistics frozen .* layer 'conv1_bn'"):
        two_step.fine_tune(str(tmp_path / "ft"), _net_kw(path, num_ids), partial, iters=(1, 1),
                           progress=False)
    assert not (tmp_path / "ft" / "step1" / "init.caffemodel").exists()


def test_init_is_remade_only_when_asked_for_other_weights(lmdb, tmp_path):
    """A step's init.caffemodel records the weights it came
    from; a rerun from other weights is refused instead of reusing it."""
    from common.atomic import Stale
    from caffe.proto import caffe_pb2
    import caffe
    from networks import geng16
    caffe_env.set_mode(None)
    path, num_ids = lmdb
    net = caffe_env.net_from_spec(geng16.geng16(base="dgdnet", data="input", k=K, m=M,
                                                num_ids=num_ids), caffe.TRAIN)
    net.save(str(tmp_path / "a.caffemodel"))
    param = caffe_pb2.NetParameter.FromString((tmp_path / "a.caffemodel").read_bytes())
    conv1 = next(layer for layer in param.layer if layer.name == "conv1")
    conv1.blobs[0].data[0] += 1
    (tmp_path / "b.caffemodel").write_bytes(param.SerializeToString())
    run = str(tmp_path / "ft")
    kw = _net_kw(path, num_ids)
    two_step.fine_tune(run, kw, str(tmp_path / "a.caffemodel"), iters=(0, 1), two_step=False,
                       progress=False)
    with pytest.raises(Stale, match=r"step2/init.caffemodel was made with weights = "):
        two_step.fine_tune(run, kw, str(tmp_path / "b.caffemodel"), iters=(0, 1), two_step=False,
                           progress=False)
    final = two_step.fine_tune(run, kw, str(tmp_path / "b.caffemodel"), iters=(0, 1),
                               two_step=False, progress=False, recompute=True)
    init = read_blobs(str(tmp_path / "ft" / "step2" / "init.caffemodel"))
    assert init["conv1"][0].data[0] == conv1.blobs[0].data[0]
    assert final.endswith("step2/final.caffemodel")


def test_step1_pv_trains_the_new_pv_layers_too(lmdb, tmp_path):
    """The other reading of step 1 (`step1_pv`): the PV layers learn with
    the classifiers; the base stays bit-identical. By default (the test
    above) they stay at their initialisation."""
    caffe_env.set_mode(None)
    path, num_ids = lmdb
    kw = _net_kw(path, num_ids)
    pretrained = two_step.fine_tune(str(tmp_path / "pre"), dict(kw, num_ids=num_ids + 1),
                                    None, iters=(0, 3), two_step=False, progress=False)
    two_step.fine_tune(str(tmp_path / "ft"), dict(kw, step1_pv=True), pretrained, iters=(3, 1),
                       progress=False)
    init = _blobs(str(tmp_path / "ft" / "step1" / "init.caffemodel"))
    after1 = _blobs(str(tmp_path / "ft" / "step1" / "final.caffemodel"))
    learnt = sorted(n for n in init if n.startswith("cls_") or "/pv_" in n)
    assert learnt == ["cls_main_%d" % num_ids, "main/pv_cls", "main/pv_fc"]
    for name in init:
        same = all(np.array_equal(a, b) for a, b in zip(init[name], after1[name]))
        assert same != (name in learnt), name


def test_step1_pv_refused_one_stepped(lmdb, tmp_path):
    path, num_ids = lmdb
    with pytest.raises(ValueError, match="step1_pv: one-stepped"):
        two_step.fine_tune(str(tmp_path / "ft"), dict(_net_kw(path, num_ids), step1_pv=True),
                           None, iters=(1, 1), two_step=False, progress=False)
