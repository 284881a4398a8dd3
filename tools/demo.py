"""The README's main job (`make demo`). For now: prove the Caffe build by
printing its summary and running one tiny net with a Python layer; the
synthetic end-to-end demo (issue 7) replaces this body."""
import os

import numpy as np

from common import caffe_env
import caffe
from caffe import layers as L


def main():
    prefix = caffe_env.caffe_prefix()
    print("Caffe %s from %s" % (caffe.__version__, prefix))
    with open(os.path.join(prefix, "build-summary.txt")) as f:
        print(f.read().rstrip())
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]))
    n.norm = L.Python(n.data, python_param=dict(module="layers.l2_normalize", layer="L2Normalize"))
    net = caffe_env.net_from_spec(n)
    net.blobs["data"].data[...] = np.array([[3, 4, 0], [1, 1, 1]])
    print("L2Normalize (Python layer) of [[3,4,0],[1,1,1]] ->", np.round(net.forward()["norm"], 4).tolist())


if __name__ == "__main__":
    main()
