"""Weight loading by layer name with a report (training/surgery.py):

    python -m tools.surgery --net prototxt/geng16/geng16_step1_train.prototxt \
        --weights weights/bvlc_googlenet.caffemodel --out runs/init.caffemodel

Every layer of the net whose name is in the .caffemodel is copied, shapes
checked first; the others keep their fillers. The file must fill at least
one layer. Prints what was copied, initialised and ignored.
"""
import argparse
import sys

from common import caffe_env, cli
from training.surgery import build_init, report_text


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.surgery", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Copy a .caffemodel's weights into a net by layer name, shapes checked\n"
                    "first; the other layers keep their fillers. Writes the initialised\n"
                    ".caffemodel (--out) and prints what was copied, initialised and ignored.",
        epilog="example:\n"
               "  python -m tools.surgery --net prototxt/geng16/geng16_step1_train.prototxt \\\n"
               "      --weights weights/bvlc_googlenet.caffemodel --out runs/init.caffemodel")
    ap.add_argument("--net", required=True, help="net prototxt (its data layer must be able to open)")
    ap.add_argument("--weights", required=True, help=".caffemodel to copy from (ImageNet or a previous stage)")
    ap.add_argument("--out", required=True, help="where to save the initialised .caffemodel")
    args = ap.parse_args(argv)
    caffe_env.set_mode(None)
    print(report_text(build_init(args.net, args.weights, args.out)))


if __name__ == "__main__":
    sys.exit(cli.run(main))
