"""Feature extraction with a deploy net (Geng16 §4.1 SIR: the 1024-D
``pool5/7x7_s1`` output; MTDnet-trp: the 512-D ranking feature), the
library of `python -m tools.extract_features`:

    extract_to_file(out, deploy, weights, split, trial=0, subsets=("query", "gallery"),
                    blob="pool5/7x7_s1", flip=False, batch=64, height=None, width=None)

Images are read with data_prep.images, resized to height × width (default:
the net's input size) and, where that is larger than the net's input,
centre-cropped to it (as the data layers do at TEST), minus the BVLC mean
(`mean`; None: none). ``flip`` averages each feature with that of the
horizontally flipped image.

Output (.npz, no pickle): for each subset S, ``S_features`` (N × D float32),
``S_pids``, ``S_cams``, ``S_index`` (image indices into the split), plus
``subsets`` and ``meta`` (a JSON string). Subset ``multi_query`` is every
image a query of the trial pools (Market multi-query, evaluation/multi_query.py).

The weights are checked against the net before Caffe sees them: a layer
whose blobs differ in number or shape, or a parametrised layer the weights
lack, stops with one line naming the layer.
"""
import json
import os

import numpy as np
from tqdm import tqdm

from common import caffe_env, cli
from common.progress import mininterval
from common.atomic import atomic_path
from common.config import MEAN_BGR
import caffe
from data_prep.images import load_bgr, resize_bgr, to_net_input
from data_prep.split_format import load_split
from training.surgery import copy_planned, plan, read_blobs

SUBSETS = ("train", "val", "query", "gallery", "multi_query")
BATCH = 64
BLOB = "pool5/7x7_s1"   # Geng16's SIR feature (the default blob)


class ExtractError(ValueError):
    """A bad argument or input; the message names it."""


def check_weights(net, weights):
    """Raise ExtractError (one line, naming the layer) unless every
    parametrised layer of `net` is in `weights` with the same blob shapes.
    Returns (the weights' blobs by layer, the layers to copy)."""
    try:
        blobs = read_blobs(weights)
        copied, missing, _ = plan(net, blobs, weights)
    except (ValueError, FileNotFoundError) as err:
        raise ExtractError(str(err)) from None
    if missing:
        raise ExtractError("layer '%s' of the net has no weights in %s (%d such layer(s))"
                           % (missing[0], weights, len(missing)))
    return blobs, copied


def load_net(deploy, weights):
    """The deploy net in TEST phase with `weights` copied in, after the check."""
    if not os.path.exists(deploy):
        raise ExtractError("deploy prototxt not found: %s" % deploy)
    net = caffe.Net(deploy, caffe.TEST)
    copy_planned(net, *check_weights(net, weights))  # the file is read once
    return net


def subset_indices(trial, subset):
    """Image indices of one subset of a trial."""
    if subset not in SUBSETS:
        raise ExtractError("unknown subset %r; known: %s" % (subset, ", ".join(SUBSETS)))
    if subset == "multi_query":
        pools = trial.get("multi_query")
        if not pools:
            raise ExtractError("trial %s has no multi_query pools" % trial.get("name"))
        return sorted({int(i) for q in trial["query"] for i in pools.get(str(q), [q])})
    return list(trial.get(subset, []))


def preprocess(path, height, width, crop, mean=MEAN_BGR):
    """One image as the net's input: resize to height × width, centre crop
    to `crop` (h, w) where smaller, BGR minus mean, 3 × h × w float32."""
    img = resize_bgr(load_bgr(path), height, width)
    ch, cw = crop
    if (height, width) != (ch, cw):
        if height < ch or width < cw:
            raise ExtractError("resize %dx%d is smaller than the net input %dx%d" % (height, width, ch, cw))
        top, left = (height - ch) // 2, (width - cw) // 2
        img = img[top:top + ch, left:left + cw]
    return to_net_input(img, mean)


def forward(net, data, blob):
    """The `blob` output of `net` for a batch (N × 3 × h × w), as N × D."""
    inp = net.inputs[0]
    net.blobs[inp].reshape(*data.shape)
    net.blobs[inp].data[...] = data
    net.forward(end=_producer(net, blob))
    return np.array(net.blobs[blob].data, np.float32).reshape(len(data), -1)


def _producer(net, blob):
    """Name of the last layer writing `blob` (forward stops there)."""
    last = None
    for name, tops in net.top_names.items():
        if blob in tops:
            last = name
    return last


def extract(net, paths, blob, height=None, width=None, batch=BATCH, flip=False, mean=MEAN_BGR,
            desc="features", progress=True):
    """Features (N × D float32) of the images at `paths`."""
    if blob not in net.blobs:
        raise ExtractError("blob '%s' is not in the net; blobs: %s" % (blob, ", ".join(net.blobs)))
    if len(net.inputs) != 1:
        raise ExtractError("the deploy net must have one input, it has %s" % list(net.inputs))
    crop = tuple(net.blobs[net.inputs[0]].data.shape[2:])
    height = height or crop[0]
    width = width or crop[1]
    rows = []
    with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress,
              mininterval=mininterval()) as bar:
        for start in range(0, len(paths), batch):
            data = np.stack([preprocess(p, height, width, crop, mean) for p in paths[start:start + batch]])
            feats = forward(net, data, blob)
            if flip:
                feats = (feats + forward(net, np.ascontiguousarray(data[..., ::-1]), blob)) / 2
            rows.append(feats)
            bar.update(len(data))
    if not rows:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(rows)


def save_features(path, subsets, meta):
    """Write the .npz atomically. `subsets`: {name: dict(features, pids, cams, index)}."""
    arrays = {"subsets": np.array(list(subsets)), "meta": np.array(json.dumps(meta, sort_keys=True))}
    for name, parts in subsets.items():
        for key, value in parts.items():
            arrays["%s_%s" % (name, key)] = value
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_features(path):
    """({subset: {"features", "pids", "cams", "index"}}, meta) of an .npz
    written by this tool."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ExtractError("features file not found: %s" % path) from None
    except (ValueError, OSError) as err:  # not NumPy's format, a folder, unreadable
        raise ExtractError("%s: not a features file of tools.extract_features (%s)"
                           % (path, cli.message(err))) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ExtractError("%s: a single array (.npy), not a features file of "
                           "tools.extract_features (an .npz with subsets and meta)" % path)
    try:
        with z:
            names = [str(s) for s in z["subsets"]]
            meta = json.loads(str(z["meta"]))
            subsets = {s: {k: z["%s_%s" % (s, k)] for k in ("features", "pids", "cams", "index")}
                       for s in names}
    except KeyError as err:
        raise ExtractError("%s: not a features file of tools.extract_features (missing %s)"
                           % (path, cli.message(err))) from None
    return subsets, meta


def extract_to_file(out, deploy, weights, split, trial=0, subsets=("query", "gallery"),
                    blob=BLOB, flip=False, batch=BATCH, height=None, width=None, mean=MEAN_BGR,
                    gpu=None, progress=True):
    """Features of the `subsets` of trial `trial` of the split file `split`
    by the deploy net `deploy` with `weights`, written to `out` (.npz, whole
    or not at all); returns {subset: {"features", "pids", "cams", "index"}}.
    Bad input raises ExtractError naming it."""
    split_path = split
    split = load_split(split_path)
    if not 0 <= trial < len(split["trials"]):
        raise ExtractError("--trial %d: the split has %d trial(s)" % (trial, len(split["trials"])))
    if (height is None) != (width is None):
        raise ExtractError("give both --height and --width, or neither")
    t = split["trials"][trial]
    caffe_env.set_mode(gpu)
    net = load_net(deploy, weights)
    found = {}
    for subset in subsets:
        idx = subset_indices(t, subset)
        images = [split["images"][i] for i in idx]
        paths = [os.path.join(split["root"], im["path"]) for im in images]
        feats = extract(net, paths, blob, height, width, batch, flip, mean, desc=subset,
                        progress=progress)
        found[subset] = {"features": feats, "pids": np.array([im["pid"] for im in images], np.int64),
                         "cams": np.array([im["cam"] for im in images], np.int64),
                         "index": np.array(idx, np.int64)}
    meta = {"deploy": os.path.abspath(deploy), "weights": os.path.abspath(weights),
            "split": os.path.abspath(split_path), "dataset": split["dataset"], "trial": trial,
            "blob": blob, "flip": bool(flip), "height": height, "width": width, "mean": mean}
    save_features(out, found, meta)
    return found
