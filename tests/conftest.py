"""Shared pytest setup: quiet glog and make the checkout importable."""
import os
import sys

os.environ.setdefault("GLOG_minloglevel", "2")
# Under pytest-xdist (`make test`: one worker per core) each worker's BLAS
# keeps to one thread, so that workers do not oversubscribe the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
