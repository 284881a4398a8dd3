"""The committed prototxt/mtdnet/ files are what networks/mtdnet.py
generates now, and each parses as a Caffe net or solver."""
import numpy as np
from google.protobuf import text_format

from caffe.proto import caffe_pb2
from tests.helpers import assert_committed_prototxt_current
from networks import mtdnet


def test_committed_prototxt_is_current():
    assert_committed_prototxt_current(mtdnet)


def test_generated_files_parse_and_carry_paper_values():
    for name, text in mtdnet.generate().items():
        msg = caffe_pb2.SolverParameter() if "_solver_" in name else caffe_pb2.NetParameter()
        text_format.Merge(text, msg)
        if "_solver_" in name:
            assert msg.lr_policy == "fixed"
            lr = 1e-4 if name == "mtdnet_solver_prid_authors.prototxt" else 1e-3  # solver.PRID_LRS
            np.testing.assert_allclose([msg.base_lr, msg.momentum, msg.weight_decay],
                                       [lr, 0.9, 5e-4], rtol=1e-6)  # float fields
            assert msg.max_iter == (200000 if "cuhk03" in name else 20000)
        else:
            layers = {l.name: l for l in msg.layer}
            if name == "deploy_head.prototxt":  # conv3 … fc8 only, on 512-channel pair maps
                assert layers["conv3"].convolution_param.num_output == 384
                continue
            conv1 = layers["conv1"].convolution_param
            assert (conv1.num_output, conv1.kernel_size[0], conv1.stride[0]) == (96, 11, 4)
            assert [p.name for p in layers["conv1"].param] == ["conv1_w", "conv1_b"]
            conv2 = layers["conv2"].convolution_param
            assert (conv2.num_output, conv2.pad[0], conv2.group) == (256, 2, 2)
            order = [l.name for l in msg.layer]
            # CaffeNet order; the authors' rnk reading AlexNet's (LRN first)
            alexnet = name.endswith("_authors.prototxt") or name.endswith("_authors_train.prototxt")
            assert (order.index("pool1") < order.index("norm1")) != alexnet, name


def test_authors_variants_are_generated():
    files = mtdnet.generate()
    for name in ("mtdnet_rnk_authors_train.prototxt", "deploy_rnk_feat_authors.prototxt"):
        msg = caffe_pb2.NetParameter()
        text_format.Merge(files[name], msg)
        assert mtdnet.rnk_net_of({l.name: l.bottom for l in msg.layer}) == "authors", name
    msg = caffe_pb2.SolverParameter()
    text_format.Merge(files["mtdnet_solver_prid_authors.prototxt"], msg)
    assert (msg.net, round(msg.base_lr, 8), msg.max_iter) == ("mtdnet_train.prototxt", 1e-4, 20000)
