"""Small real inputs for the tests of the report's pictures (ranked
lists, curves, the page): a split of real
image files, a features file of it, and training stages trained by
training/stage.py (real pycaffe, a few seconds)."""
import os

import numpy as np
from PIL import Image

from common import caffe_env  # noqa: F401  (glog settings parse_log.py reads, before caffe)
import caffe
from caffe import layers as L
from data_prep.split_format import save_split
from evaluation.features import save_features
from training.stage import train_stage

# (pid, cam) of the gallery and query images: person 1 also in the query's
# camera (junk under Market's rule), id -1 junk, 0 a distractor.
GALLERY = [(1, 2), (1, 1), (2, 1), (2, 3), (3, 2), (4, 1), (5, 3), (0, 2), (-1, 1), (6, 2),
           (7, 1), (8, 3), (9, 2), (3, 1)]
QUERY = [(1, 1), (2, 2), (3, 3)]


def colour(pid, cam):
    """A distinct colour per image, so a test can find it in a picture."""
    return (40 + 20 * (pid % 10), 60 + 40 * cam, 200 - 15 * (pid % 10))


def make_split(folder):
    """A Market-layout split of solid-colour 64 × 32 JPEG-free PNG images;
    returns (split path, split)."""
    images = []
    for k, (pid, cam) in enumerate(GALLERY + QUERY):
        subset = "bounding_box_test" if k < len(GALLERY) else "query"
        rel = "%s/%04d_c%d_%02d.png" % (subset, max(pid, 0), cam, k)
        os.makedirs(os.path.join(folder, subset), exist_ok=True)
        Image.new("RGB", (32, 64), colour(pid, cam)).save(os.path.join(folder, rel))
        images.append({"path": rel, "pid": pid, "cam": cam, "set": subset})
    n = len(GALLERY)
    split = {"format": "reid-split/1", "dataset": "market1501", "root": str(folder),
             "images": images, "trials": [{"name": "trial00", "train": [], "train_labels": [],
                                           "val": [], "query": list(range(n, len(images))),
                                           "gallery": list(range(n))}]}
    path = os.path.join(folder, "split.json")
    save_split(split, path)
    return path, split


def make_features(path, split_path, split, seed=0):
    """A features file of the split: random features, but each query next
    to its true match (so rank 1 is right for query 0)."""
    rng = np.random.default_rng(seed)
    trial = split["trials"][0]
    sub = {}
    for name in ("query", "gallery"):
        idx = trial[name]
        sub[name] = {"features": rng.normal(size=(len(idx), 8)).astype(np.float32),
                     "pids": np.array([split["images"][i]["pid"] for i in idx], np.int64),
                     "cams": np.array([split["images"][i]["cam"] for i in idx], np.int64),
                     "index": np.array(idx, np.int64)}
    sub["query"]["features"][0] = sub["gallery"]["features"][0] + 0.01   # person 1, cam 2
    save_features(path, sub, {"split": os.path.abspath(split_path)})
    return path


def write_stage(folder, max_iter=40, lr=0.01, frozen=False):
    """A tiny classifier (DummyData → conv → fc → softmax loss) and its
    solver in `folder`; `frozen`: the conv does not learn (like step 1)."""
    os.makedirs(folder, exist_ok=True)
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[8, 3, 12, 12]), dict(dim=[8])],
                                  data_filler=[dict(type="gaussian", std=1.0),
                                               dict(type="constant", value=1)], ntop=2)
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=3, weight_filler=dict(type="xavier"),
                           param=[dict(lr_mult=0 if frozen else 1)] * 2)
    n.fc = L.InnerProduct(n.conv, num_output=3, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    with open(os.path.join(folder, "train.prototxt"), "w") as f:
        f.write(str(n.to_proto()))
    solver = os.path.join(folder, "solver.prototxt")
    with open(solver, "w") as f:
        f.write('net: "train.prototxt"\nbase_lr: %g\nlr_policy: "step"\ngamma: 0.1\n'
                'stepsize: %d\nmomentum: 0.9\nmax_iter: %d\ndisplay: 5\nrandom_seed: 1\n'
                % (lr, max_iter // 2, max_iter))
    return solver


def train_two_stepped(stage, iters=(20, 30)):
    """A two-stepped stage like training/two_step.py's: step1/ then step2/
    from step 1's weights; returns the final weights."""
    weights = train_stage(write_stage(os.path.join(stage, "step1"), iters[0], 0.01, True),
                          os.path.join(stage, "step1"), progress=False)
    return train_stage(write_stage(os.path.join(stage, "step2"), iters[1], 0.001),
                       os.path.join(stage, "step2"), weights, progress=False)
