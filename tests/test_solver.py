"""The papers' schedules as solver parameters, and the iteration
scale factor that keeps a schedule's shape."""
import pytest
from google.protobuf import text_format

from common import caffe_env  # noqa: F401
from caffe.proto import caffe_pb2
from networks import solver


def test_geng16_schedule_and_scale():
    full = solver.geng16_solver("net.prototxt", solver.GENG16_LARGE_STEP2_ITERS)
    assert (full.base_lr, full.lr_policy, full.gamma, full.stepsize, full.max_iter) == \
        (pytest.approx(0.001), "step", pytest.approx(0.1), 40000, 150000)
    short = solver.geng16_solver("net.prototxt", solver.GENG16_LARGE_STEP2_ITERS, scale=0.001)
    assert (short.stepsize, short.max_iter, short.snapshot) == (40, 150, 10)
    # the shape is kept: the number of lr drops within the run is the same
    assert full.max_iter // full.stepsize == short.max_iter // short.stepsize == 3


def test_mtdnet_schedule_round_trips_through_prototxt():
    p = solver.mtdnet_solver("mtd.prototxt", solver.MTDNET_SMALL_ITERS, random_seed=3)
    again = caffe_pb2.SolverParameter()
    text_format.Merge(solver.to_text(p), again)
    assert again == p
    assert (again.lr_policy, again.base_lr, again.momentum, again.weight_decay, again.max_iter) == \
        ("fixed", pytest.approx(0.001), pytest.approx(0.9), pytest.approx(0.0005), 20000)


def test_step_policy_needs_stepsize():
    with pytest.raises(ValueError, match="stepsize"):
        solver.solver_param("n", 0.1, 10, lr_policy="step")


@pytest.mark.parametrize("reading,net,lr", [("paper", "mtdnet", 1e-3), ("paper", "mtdnet_rnk", 1e-3),
                                            ("authors", "mtdnet", 1e-4),
                                            ("authors", "mtdnet_cross", 1e-4),
                                            ("authors", "mtdnet_rnk", 1e-3)])
def test_mtdnet_prid_lr_readings(reading, net, lr):
    """The paper: 1e-3 throughout; the authors' PRID solver files: 1e-4 for
    MTDnet (Nets/MTDnet/solver_PRID.prototxt), 1e-3 for MTDnet-rnk."""
    assert solver.mtdnet_prid_lr(reading, net) == pytest.approx(lr)
    p = solver.mtdnet_solver("n", solver.MTDNET_SMALL_ITERS,
                             base_lr=solver.mtdnet_prid_lr(reading, net))
    assert p.base_lr == pytest.approx(lr)


def test_mtdnet_prid_lr_reading_is_checked():
    with pytest.raises(ValueError, match="PRID lr reading must be one of paper, authors"):
        solver.mtdnet_prid_lr("code", "mtdnet")
