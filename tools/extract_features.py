"""Feature extraction with a deploy net (Geng16 §4.1 SIR: the 1024-D
``pool5/7x7_s1`` output; MTDnet-trp: the 512-D ranking feature):

    python -m tools.extract_features --deploy D.prototxt --weights W.caffemodel \
        --split S.json --trial 0 --subsets query gallery [multi_query] \
        --blob pool5/7x7_s1 --out F.npz [--flip] [--batch 64] [--height H --width W]

Images are read with data_prep.images, resized to H × W (default: the net's
input size) and, where that is larger than the net's input, centre-cropped
to it (as the data layers do at TEST), minus the BVLC mean. ``--flip``
averages each feature with that of the horizontally flipped image.

Output (.npz, no pickle; evaluation/features.py): for each subset S,
``S_features`` (N × D float32), ``S_pids``, ``S_cams``, ``S_index`` (image
indices into the split), plus ``subsets`` and ``meta`` (a JSON string).
Subset ``multi_query`` is every image a query of the trial pools (Market
multi-query). The weights are checked against the net before Caffe sees
them: a layer whose blobs differ in number or shape, or a parametrised
layer the weights lack, stops with one line naming the layer.
"""
import argparse
import sys

from common import cli
from common.config import MEAN_BGR
from evaluation.features import BATCH, BLOB, SUBSETS, extract_to_file


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.extract_features",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Features of a split's images through a deploy net and its weights\n"
                    "(default blob: Geng16's pool5/7x7_s1), optionally averaged with the\n"
                    "mirrored image. Reads the split JSON and its image files; writes one .npz\n"
                    "(--out): each subset's features, person ids, cameras and image indices.",
        epilog="example:\n"
               "  python -m tools.extract_features --deploy prototxt/geng16/geng16_deploy.prototxt \\\n"
               "      --weights runs/geng16/step2/final.caffemodel --split data/splits/market1501.json \\\n"
               "      --subsets query gallery --out runs/geng16/market_feats.npz")
    ap.add_argument("--deploy", required=True, help="deploy prototxt (one Input)")
    ap.add_argument("--weights", required=True, help=".caffemodel")
    ap.add_argument("--split", required=True, help="canonical split JSON")
    ap.add_argument("--trial", type=cli.nonnegative_int, default=0)
    ap.add_argument("--subsets", nargs="+", default=["query", "gallery"], choices=SUBSETS)
    ap.add_argument("--blob", default=BLOB, help="feature blob (default: Geng16's)")
    ap.add_argument("--out", required=True, help="features .npz")
    ap.add_argument("--flip", action="store_true", help="average with the horizontally flipped image")
    ap.add_argument("--batch", type=cli.positive_int, default=BATCH)
    ap.add_argument("--height", type=cli.positive_int, help="resize height (default: the net's input)")
    ap.add_argument("--width", type=cli.positive_int, help="resize width (default: the net's input)")
    ap.add_argument("--no-mean", action="store_true", help="no mean subtraction (MTDnet's code)")
    ap.add_argument("--gpu", type=cli.nonnegative_int, default=None)
    args = ap.parse_args(argv)
    extract_to_file(args.out, args.deploy, args.weights, args.split, trial=args.trial,
                    subsets=args.subsets, blob=args.blob, flip=args.flip, batch=args.batch,
                    height=args.height, width=args.width,
                    mean=None if args.no_mean else MEAN_BGR, gpu=args.gpu)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
