"""The committed prototxt/geng16/ files are what tools/netgen/geng16.py
generates now, and each parses as a Caffe net or solver carrying the
paper's values (issue 3)."""
import numpy as np
from google.protobuf import text_format

from caffe.proto import caffe_pb2
from tests.helpers import assert_committed_prototxt_current
from tools.netgen import geng16


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
