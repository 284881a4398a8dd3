"""Feature extraction with a deploy net (Geng16 §4.1 SIR: the 1024-D
``pool5/7x7_s1`` output; MTDnet-trp: the 512-D ranking feature):

    python -m tools.extract_features --deploy D.prototxt --weights W.caffemodel \
        --split S.json --trial 0 --subsets query gallery [multi_query] \
        --blob pool5/7x7_s1 --out F.npz [--flip] [--batch 64] [--height H --width W]

Images are read with data_prep.images, resized to H × W (default: the net's
input size) and, where that is larger than the net's input, centre-cropped
to it (as the data layers do at TEST), minus the BVLC mean. ``--flip``
averages each feature with that of the horizontally flipped image.

Output (.npz, no pickle): for each subset S, ``S_features`` (N × D float32),
``S_pids``, ``S_cams``, ``S_index`` (image indices into the split), plus
``subsets`` and ``meta`` (a JSON string). Subset ``multi_query`` is every
image a query of the trial pools (Market multi-query, tools/evaluation).

The weights are checked against the net before Caffe sees them: a layer
whose blobs differ in number or shape, or a parametrised layer the weights
lack, stops with one line naming the layer.
"""
import json
import os
import sys

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
            desc="features"):
    """Features (N × D float32) of the images at `paths`."""
    if blob not in net.blobs:
        raise ExtractError("blob '%s' is not in the net; blobs: %s" % (blob, ", ".join(net.blobs)))
    if len(net.inputs) != 1:
        raise ExtractError("the deploy net must have one input, it has %s" % list(net.inputs))
    crop = tuple(net.blobs[net.inputs[0]].data.shape[2:])
    height = height or crop[0]
    width = width or crop[1]
    rows = []
    with tqdm(total=len(paths), desc=desc, unit="img",
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


def run(args):
    split = load_split(args.split)
    if not 0 <= args.trial < len(split["trials"]):
        raise ExtractError("--trial %d: the split has %d trial(s)" % (args.trial, len(split["trials"])))
    if (args.height is None) != (args.width is None):
        raise ExtractError("give both --height and --width, or neither")
    trial = split["trials"][args.trial]
    caffe_env.set_mode(args.gpu)
    net = load_net(args.deploy, args.weights)
    mean = None if args.no_mean else MEAN_BGR
    out = {}
    for subset in args.subsets:
        idx = subset_indices(trial, subset)
        images = [split["images"][i] for i in idx]
        paths = [os.path.join(split["root"], im["path"]) for im in images]
        feats = extract(net, paths, args.blob, args.height, args.width, args.batch, args.flip, mean,
                        desc=subset)
        out[subset] = {"features": feats, "pids": np.array([im["pid"] for im in images], np.int64),
                       "cams": np.array([im["cam"] for im in images], np.int64),
                       "index": np.array(idx, np.int64)}
    meta = {"deploy": os.path.abspath(args.deploy), "weights": os.path.abspath(args.weights),
            "split": os.path.abspath(args.split), "dataset": split["dataset"], "trial": args.trial,
            "blob": args.blob, "flip": bool(args.flip), "height": args.height, "width": args.width,
            "mean": mean}
    save_features(args.out, out, meta)
    return out


def main(argv=None):
    ap = cli.ArgumentParser(description="extract features of a split's images with a deploy net")
    ap.add_argument("--deploy", required=True, help="deploy prototxt (one Input)")
    ap.add_argument("--weights", required=True, help=".caffemodel")
    ap.add_argument("--split", required=True, help="canonical split JSON")
    ap.add_argument("--trial", type=cli.nonnegative_int, default=0)
    ap.add_argument("--subsets", nargs="+", default=["query", "gallery"], choices=SUBSETS)
    ap.add_argument("--blob", default="pool5/7x7_s1", help="feature blob (default: Geng16's)")
    ap.add_argument("--out", required=True, help="features .npz")
    ap.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    ap.add_argument("--batch", type=cli.positive_int, default=BATCH)
    ap.add_argument("--height", type=cli.positive_int, help="resize height (default: the net's input)")
    ap.add_argument("--width", type=cli.positive_int, help="resize width (default: the net's input)")
    ap.add_argument("--no-mean", action="store_true", help="no mean subtraction (MTDnet's code)")
    ap.add_argument("--gpu", type=cli.nonnegative_int, default=None)
    args = ap.parse_args(argv)
    run(args)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
