"""Regenerate the committed network and solver definitions (prototxt/) from
their NetSpec generators (networks/):

    python -m tools.netgen geng16 [--out prototxt/geng16] [--num-ids 751]
                                  [--source LMDB] [--val-source LMDB]
    python -m tools.netgen mtdnet [--out prototxt/mtdnet] [--size 227]
                                  [--source LMDB] [--aux-source LMDB] [--batch 128]
    python -m tools.netgen unsupervised [--out prototxt/unsupervised] [--num-ids 751]
                                        [--source LMDB] [--target LMDB]
    python -m tools.netgen all          (the three families with their defaults)

Each prints the folder it wrote (every file atomically).
"""
import argparse
import sys

from common import cli
from common.config import MTDNET_INPUT
from networks import geng16, mtdnet, unsupervised

# family -> (its writer, the options it takes besides --out)
WRITERS = {"geng16": (geng16.write_all, ("num_ids", "source", "val_source")),
           "mtdnet": (mtdnet.write, ("size", "batch", "source", "aux_source")),
           "unsupervised": (unsupervised.write_all, ("num_ids", "source", "target"))}
FAMILIES = tuple(WRITERS)


def build_parser():
    ap = cli.ArgumentParser(
        prog="python -m tools.netgen", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Regenerate the committed network and solver definitions (prototxt/) from\n"
                    "their NetSpec generators (networks/). Each family writes its folder, every\n"
                    "file atomically, and prints it; `python -m tools.netgen FAMILY --help` lists\n"
                    "a family's options.",
        epilog="examples:\n"
               "  python -m tools.netgen all\n"
               "  python -m tools.netgen mtdnet --size 224 --out /tmp/mtdnet224")
    sub = ap.add_subparsers(dest="family", required=True, metavar="geng16|mtdnet|unsupervised|all")
    g = sub.add_parser(
        "geng16", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Geng16's train, deploy and solver prototxt (GoogLeNet and DGDNet bases,\n"
                    "every loss and dropout variant) into --out (default prototxt/geng16).",
        epilog="example:\n  python -m tools.netgen geng16 --num-ids 1160 --out /tmp/geng16")
    g.add_argument("--out", default=geng16.OUT_DIR)
    g.add_argument("--num-ids", type=cli.positive_int, default=geng16.NUM_IDS,
                   help="training identities N (names the cls_<head>_<N> layers)")
    g.add_argument("--source", default=geng16.DEFAULT_SOURCE, help="training LMDB")
    g.add_argument("--val-source", default=geng16.DEFAULT_VAL_SOURCE, help="validation LMDB")
    m = sub.add_parser(
        "mtdnet", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="MTDnet's train nets (MTDnet, -rnk, -cls, -cross), deploy nets and solvers\n"
                    "into --out (default prototxt/mtdnet).",
        epilog="example:\n  python -m tools.netgen mtdnet --size 224 --out /tmp/mtdnet224")
    m.add_argument("--out", default=mtdnet.OUT_DIR)
    m.add_argument("--size", type=cli.positive_int, default=MTDNET_INPUT,
                   help="input side (227: authors' code; 224: the paper)")
    m.add_argument("--batch", type=cli.positive_int, default=mtdnet.BATCH, help="triplets per batch")
    m.add_argument("--source", default=mtdnet.DEFAULT_SOURCE, help="training LMDB (target set)")
    m.add_argument("--aux-source", default=mtdnet.DEFAULT_AUX_SOURCE,
                   help="source-domain LMDB (cross net)")
    u = sub.add_parser(
        "unsupervised", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Geng16's Table 9 alternatives to co-training, the autoencoder and the\n"
                    "domain-adversarial net, into --out (default prototxt/unsupervised).",
        epilog="example:\n  python -m tools.netgen unsupervised --num-ids 1160 --out /tmp/unsupervised")
    u.add_argument("--out", default=unsupervised.OUT_DIR)
    u.add_argument("--num-ids", type=cli.positive_int, default=geng16.NUM_IDS,
                   help="source training identities N (names cls_main_<N>)")
    u.add_argument("--source", default=geng16.DEFAULT_SOURCE, help="labelled source LMDB")
    u.add_argument("--target", default=unsupervised.DEFAULT_TARGET,
                   help="target LMDB, every image with its own label")
    sub.add_parser("all", formatter_class=argparse.RawDescriptionHelpFormatter,
                   description="Every family into its prototxt/ folder, with the defaults.",
                   epilog="example:\n  python -m tools.netgen all")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    for family in FAMILIES if args.family == "all" else [args.family]:
        write, options = WRITERS[family]
        if args.family == "all":
            print(write())
        else:
            print(write(args.out, **{key: getattr(args, key) for key in options}))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
