"""Initial weights of the MTDnet family (training/mtdnet_init.py):

    python -m tools.mtdnet_init --net prototxt/mtdnet/mtdnet_train.prototxt \
        --caffenet weights/bvlc_reference_caffenet.caffemodel --out init.caffemodel
    python -m tools.mtdnet_init --net prototxt/mtdnet/mtdnet_cross_train.prototxt \
        --weights runs/cuhk03/final.caffemodel --out cross_init.caffemodel

Prints the path of the weights written.
"""
import argparse
import sys

from common import caffe_env, cli
from training.mtdnet_init import build_init


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.mtdnet_init", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Initial weights of an MTDnet train net: conv1-conv2 from CaffeNet\n"
                    "(--caffenet; the other layers keep their fillers), or every layer by name\n"
                    "from a trained MTDnet model (--weights; the cross-domain net's source\n"
                    "stream a copy of its target stream). Writes --out and prints its path.",
        epilog="examples:\n"
               "  python -m tools.mtdnet_init --net prototxt/mtdnet/mtdnet_train.prototxt \\\n"
               "      --caffenet weights/bvlc_reference_caffenet.caffemodel --out init.caffemodel\n"
               "  python -m tools.mtdnet_init --net prototxt/mtdnet/mtdnet_cross_train.prototxt \\\n"
               "      --weights runs/cuhk03/final.caffemodel --out cross_init.caffemodel")
    ap.add_argument("--net", required=True, help="train prototxt (its data layer must be able to open)")
    ap.add_argument("--caffenet", help="bvlc_reference_caffenet.caffemodel (conv1-conv2; the "
                    "authors' MTDnet-rnk: every layer but fc8)")
    ap.add_argument("--weights", help="a trained MTDnet model to start from (all layers by name)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if not (args.caffenet or args.weights):
        ap.error("give --caffenet and/or --weights")
    caffe_env.set_mode(None)
    print(build_init(args.net, args.out, args.caffenet, args.weights))


if __name__ == "__main__":
    sys.exit(cli.run(main))
