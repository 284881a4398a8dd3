"""The committed prototxt/geng16/ files are what networks/geng16.py
generates now, and each parses as a Caffe net or solver carrying the
paper's values."""
import json

import numpy as np
from google.protobuf import text_format

from caffe.proto import caffe_pb2
from tests.helpers import assert_committed_prototxt_current
from networks import geng16


def test_committed_prototxt_is_current():
    assert_committed_prototxt_current(geng16)


def test_generated_files_parse_and_carry_paper_values():
    for name, text in geng16.generate().items():
        if "_solver_" in name:
            msg = caffe_pb2.SolverParameter()
            text_format.Merge(text, msg)
            assert (msg.lr_policy, msg.stepsize) == ("step", 40000)
            np.testing.assert_allclose([msg.base_lr, msg.gamma], [0.001, 0.1], rtol=1e-6)
            large_step2 = "large_step2" in name
            assert msg.max_iter == (150000 if large_step2 else 20000)
            continue
        msg = caffe_pb2.NetParameter()
        text_format.Merge(text, msg)
        layers = {l.name: l for l in msg.layer}
        if name.endswith("_deploy.prototxt"):
            assert not any(l.type == "Python" for l in msg.layer)
            continue
        data = layers["data"].python_param
        assert (data.module, data.layer) == ("layers.identity_sampled_data", "IdentitySampledData")
        if name == "geng16_train.prototxt":
            weights = {l.name: l.loss_weight[0] for l in msg.layer if l.loss_weight}
            assert len(weights) == 6
            np.testing.assert_allclose([weights["main/pv_loss"], weights["main/sid_loss"],
                                        weights["aux1/pv_loss"], weights["aux2/sid_loss"]],
                                       [3, 1, 0.9, 0.3], rtol=1e-6)
            assert layers["cls_main_751"].inner_product_param.num_output == 751
            assert '"consistent": true' in layers["main/pv_drop"].python_param.param_str
        if name == "geng16_random_train.prototxt":
            assert '"consistent": false' in layers["main/pv_drop"].python_param.param_str


def _dropouts(text):
    """{layer name: (number of sides, param_str as a dict)} of the net's
    pairwise-consistent dropout layers."""
    msg = caffe_pb2.NetParameter()
    text_format.Merge(text, msg)
    return {l.name: (len(l.bottom), json.loads(l.python_param.param_str)) for l in msg.layer
            if l.type == "Python" and l.python_param.layer == "PairwiseConsistentDropout"}


def test_every_head_has_the_variants_dropout():
    files = geng16.generate()
    # Table 5's "consistent" and "random" rows, on every head and both pair heads (PV, TL).
    assert set(_dropouts(files["geng16_train.prototxt"])) == {"main/pv_drop", "aux1/pv_drop", "aux2/pv_drop"}
    assert set(_dropouts(files["geng16_sid_pv_tl_train.prototxt"])) == {
        "%s/%s_drop" % (h, k) for h in ("main", "aux1", "aux2") for k in ("pv", "tl")}
    assert set(_dropouts(files["dgdnet_train.prototxt"])) == {"main/pv_drop"}
    checked = 0
    for variant, kw in geng16.VARIANTS.items():
        random = kw.get("pv_dropout", "consistent") == "random"
        assert random == variant.endswith("_random")
        _, _, ratios = geng16.BASES[kw.get("base", "googlenet")]
        for suffix in ("_train", "_step1_train", "_val"):
            name = variant + suffix + ".prototxt"
            if name not in files:
                continue
            drops = _dropouts(files[name])
            losses = kw.get("losses", ("sid", "pv"))
            assert set(drops) == {"%s/%s_drop" % (h, k) for h in ratios for k in ("pv", "tl")
                                  if k in losses}, name
            for layer, (sides, params) in drops.items():
                head, kind = layer.split("/")
                assert params["consistent"] is not random, (name, layer)
                assert params["ratio"] == ratios[head], (name, layer)
                assert sides == (2 if kind == "pv_drop" else 3), (name, layer)
                checked += 1
    assert checked == 42   # 14 nets carry dropout layers; a vacuous loop would check none


def _net(text):
    msg = caffe_pb2.NetParameter()
    text_format.Merge(text, msg)
    return {l.name: l for l in msg.layer}


def test_ordered_pairs_variant_on_every_pv_head():
    """§5.2's other reading: geng16_ordered_train.prototxt asks every pair
    layer for ordered pairs; the paper's net keeps the default (unordered,
    left implicit so that earlier nets keep their text)."""
    files = geng16.generate()
    for name, wanted in (("geng16_ordered_train.prototxt", "ordered"),
                         ("geng16_train.prototxt", None)):
        pairs = {n: json.loads(l.python_param.param_str).get("pairs")
                 for n, l in _net(files[name]).items()
                 if l.type == "Python" and l.python_param.layer == "PairGeneration"}
        assert pairs == {h + "/pairs": wanted for h in geng16.HEADS}, name


def test_step1_pv_variant_lets_the_pv_layers_learn():
    files = geng16.generate()
    for name, pv_lr in (("geng16_step1_train.prototxt", 0), ("geng16_step1_pv_train.prototxt", 1)):
        layers = _net(files[name])
        lr = {n: l.param[0].lr_mult for n, l in layers.items() if l.param}
        assert lr["cls_main_751"] == 1 and lr["conv1/7x7_s2"] == 0, name
        pv = [n for n in lr if "/pv_" in n]
        assert len(pv) == 6 and all(lr[n] == pv_lr for n in pv), name
        assert all(lr[n] == 0 for n in lr if not n.startswith("cls_") and "/pv_" not in n), name
