"""GradientReversal (Geng16 §5.6 / Table 9, Ganin & Lempitsky 2015) through
real pycaffe: identity forward, backward −coeff × the top diff, checked by
hand, by finite differences, and param_str validation."""
import numpy as np
import pytest

import caffe
from caffe import layers as L
from tests.helpers import check_gradient, net_from_spec, python_layer_net

MODULE, LAYER = "layers.gradient_reversal", "GradientReversal"


@pytest.mark.parametrize("params,coeff", [({}, 1.0), ({"coeff": 0.5}, 0.5), ({"coeff": 0}, 0.0),
                                          ({"coeff": 3}, 3.0)])
def test_forward_is_identity_and_backward_reverses(params, coeff):
    x = np.array([[1.5, -2.0, 0.0], [4.0, 0.25, -8.0]], np.float32)
    net, bottoms, tops = python_layer_net(MODULE, LAYER, [x], params=params)
    net.forward()
    np.testing.assert_array_equal(net.blobs[tops[0]].data, x)
    dy = np.array([[1.0, 2.0, -3.0], [0.5, -0.5, 4.0]], np.float32)
    net.backward(**{tops[0]: dy})
    np.testing.assert_array_equal(net.blobs[bottoms[0]].diff, -coeff * dy)


def test_backward_is_minus_coeff_times_the_finite_difference_gradient():
    x = np.random.RandomState(0).randn(2, 3, 2).astype(np.float32)
    net, bottoms, tops = python_layer_net(MODULE, LAYER, [x], params={"coeff": 0.7})
    weights = np.random.RandomState(1).uniform(-1, 1, x.shape).astype(np.float32)

    def f():
        net.forward()
        return float(np.sum(net.blobs[tops[0]].data.astype(np.float64) * weights))

    data = net.blobs[bottoms[0]].data.reshape(-1)
    numeric = np.empty(data.size)
    for i in range(data.size):
        old = data[i]
        data[i] = old + 1e-2
        up = f()
        data[i] = old - 1e-2
        numeric[i] = (up - f()) / 2e-2
        data[i] = old
    f()
    net.backward(**{tops[0]: weights})
    np.testing.assert_allclose(net.blobs[bottoms[0]].diff.reshape(-1), -0.7 * numeric, rtol=1e-3, atol=1e-4)


def test_two_reversals_cancel_under_the_gradient_check():
    # Coefficients 2 and 0.5: the composition is the identity with gradient
    # (−2)(−0.5) = +1 times the true one, which check_gradient must accept.
    x = np.random.RandomState(2).randn(3, 4).astype(np.float32)
    n = caffe.NetSpec()
    n.x = L.Input(shape=dict(dim=list(x.shape)))
    n.r1 = L.Python(n.x, python_param=dict(module=MODULE, layer=LAYER, param_str='{"coeff": 2}'))
    n.r2 = L.Python(n.r1, python_param=dict(module=MODULE, layer=LAYER, param_str='{"coeff": 0.5}'))
    net = net_from_spec(n)
    net.blobs["x"].data[...] = x
    check_gradient(net, ["x"], ["r2"])


@pytest.mark.parametrize("params,match", [({"coeff": -1}, "must be >= 0"),
                                          ({"scale": 1}, "unknown param_str key"),
                                          ({"coeff": "1"}, "must be float")])
def test_bad_param_str_raises(params, match):
    with pytest.raises(ValueError, match=match):
        python_layer_net(MODULE, LAYER, [np.ones((2, 3), np.float32)], params=params)
