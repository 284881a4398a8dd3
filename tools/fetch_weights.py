"""Download the canonical ImageNet models and verify their SHA1
(training/fetch_weights.py), into common.config.WEIGHTS_ROOT:

    python -m tools.fetch_weights [bvlc_googlenet ...] [--dest weights/]

Prints each model's path. Without network: one message naming the URL and
the path to put the file at.
"""
import argparse
import sys

from common import cli
from common.config import WEIGHTS_ROOT
from training.fetch_weights import MODELS, fetch


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.fetch_weights", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Download BVLC's ImageNet models from the URL in Caffe's\n"
                    "models/<name>/readme.md, check the SHA-1 given there, write the\n"
                    ".caffemodel into --dest (default weights/, or $REID_WEIGHTS) and print its\n"
                    "path. Without network: one line naming the URL and where to put the file.",
        epilog="example:\n  python -m tools.fetch_weights bvlc_googlenet bvlc_reference_caffenet")
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="one or more of %s (default bvlc_googlenet)" % ", ".join(MODELS))
    ap.add_argument("--dest", default=WEIGHTS_ROOT)
    args = ap.parse_args(argv)
    args.names = args.names or ["bvlc_googlenet"]
    unknown = sorted(set(args.names) - set(MODELS))
    if unknown:
        ap.error("unknown model(s) %s; known: %s" % (", ".join(unknown), ", ".join(MODELS)))
    for name in args.names:
        print(fetch(name, args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
