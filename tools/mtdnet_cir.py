"""CIR test of MTDnet (Chen et al. 2017; evaluation/cir.py):

    python -m tools.mtdnet_cir --weights W.caffemodel --query Q.lmdb --gallery G.lmdb \
        [--passes 8] [--size 227] [--trp] [--out scores.npz]

Every probe × gallery pair is scored by the classifier's same-person
probability and the gallery ranked by it (`--passes 8`: both orders ×
horizontal flips, the authors' test; 2 = both orders; 1 = (probe,
gallery)); `--trp` also ranks by the 512-D ranking feature of the same
model, `--rnk` by an MTDnet-rnk model's feature alone. The scores file
(`--out`) holds the matrices, q/g pids and cams, and the query and gallery
LMDBs' paths; each ranking's single-shot CMC is printed. Weights that do
not fill every layer of the deploy nets are refused, naming the first
layer that does not fit.
"""
import argparse
import sys

from common import cli
from common.config import MTDNET_INPUT
from evaluation.cir import PASSES, score_to_file, summary


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.mtdnet_cir", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="MTDnet's CIR test: every query x gallery pair of two reid-lmdb/1 LMDBs\n"
                    "scored by the classifier's same-person probability (--passes 8: both\n"
                    "orders x flips, the authors' test); --trp also ranks by the 512-D feature.\n"
                    "Prints each ranking's single-shot CMC; --out writes the score matrices\n"
                    "(.npz) that tools.evaluate --matrix reads.",
        epilog="example:\n"
               "  python -m tools.mtdnet_cir --weights runs/mtdnet/final.caffemodel \\\n"
               "      --query query.lmdb --gallery gallery.lmdb --trp --out scores.npz")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--query", required=True, help="query LMDB (reid-lmdb/1)")
    ap.add_argument("--gallery", required=True, help="gallery LMDB (reid-lmdb/1)")
    ap.add_argument("--size", type=int, default=MTDNET_INPUT)
    ap.add_argument("--passes", type=int, default=PASSES, choices=(1, 2, 8))
    ap.add_argument("--mean", type=float, nargs=3, default=None, help="BGR mean to subtract")
    ap.add_argument("--trp", action="store_true", help="also rank by the 512-D feature (MTDnet-trp)")
    ap.add_argument("--rnk", action="store_true",
                    help="the weights are an MTDnet-rnk model: rank by its 512-D feature only")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--gpu", type=int, default=None)
    ap.add_argument("--out", help="scores.npz to write")
    args = ap.parse_args(argv)
    result = score_to_file(args.weights, args.query, args.gallery, args.out, size=args.size,
                           passes=args.passes, mean=args.mean, trp=args.trp, rnk=args.rnk,
                           gpu=args.gpu)
    for line in summary(result, args.repeats):
        print(line)


if __name__ == "__main__":
    sys.exit(cli.run(main))
