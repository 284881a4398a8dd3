"""One command per dataset:

    python -m data_prep DATASET ROOT --out SPLIT.json [protocol options]
        [--lmdb OUT_DIR --size H W --subset train --trial 0 --augment 0]
    python -m data_prep merge SPLIT.json SPLIT.json ... --out MERGED.json [--eval-from K]

DATASET is market1501, cuhk03, viper, prid2011, cuhk01, ilids, synthetic or
merge. ROOT is the extracted download as distributed; for synthetic, the
folder where data_prep.synthetic writes a Market-1501-layout tree, which is
then parsed as Market-1501; for merge, two or more split files. Ends with a
summary line: images, identities, cameras, size on disk. Errors end the
command with one line naming the file or field (common/cli.py); outputs are
checked before the dataset is read: an --out that is a folder, or an --lmdb
folder the package did not make, is refused and left as it is. The work is
data_prep/prepare.py's `make_split` and `merge_splits`.
"""
import argparse
import os
import sys

from common import cli
from common.atomic import check_replaceable
from data_prep.prepare import DATASETS as PARSERS, check_out, make_split, merge_splits

DATASETS = PARSERS + ("merge",)
# the command's protocol options, passed to make_split when given
OPTIONS = ("protocol", "version", "image_dir", "seed", "trials", "num_train", "num_val", "num_ids",
           "no_multi_query", "verify_images", "num_classes")


def build_parser():
    p = cli.ArgumentParser(
        prog="python -m data_prep", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Parse a dataset as distributed (ROOT) into its canonical split file\n"
                    "(--out), and optionally an LMDB of one subset (--lmdb); or merge split\n"
                    "files into one training set (merge). For synthetic, ROOT is where a\n"
                    "Market-1501-layout tree is generated first. Ends with a summary line:\n"
                    "images, identities, cameras, size on disk.",
        epilog="examples:\n"
               "  python -m data_prep market1501 /data/reid/market1501 --out data/splits/market1501.json\n"
               "  python -m data_prep merge data/splits/cuhk03.json data/splits/market1501.json \\\n"
               "      --out data/splits/cuhk03_market1501.json")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("root", nargs="+", help="dataset root as distributed (merge: split files)")
    p.add_argument("--out", required=True, help="split JSON to write")
    g = p.add_argument_group("protocol (defaults are the papers')")
    g.add_argument("--protocol", help="cuhk03: classic | new (767/700); cuhk01: 485/486 | 871/100")
    g.add_argument("--version", action=cli.VersionOr, choices=("labeled", "detected"),
                   help="cuhk03 images (default labeled); alone: the package's version")
    g.add_argument("--image-dir", help="cuhk03: where the images are extracted "
                                       "(default: cuhk03_png/ beside --out)")
    g.add_argument("--seed", type=int, help="split seed (default common.config.SPLIT_SEED)")
    g.add_argument("--trials", type=int, help="number of random trials (default common.config.NUM_TRIALS)")
    g.add_argument("--num-train", type=int, help="training identities per trial")
    g.add_argument("--num-val", type=int, help="cuhk03 classic: validation identities per trial (default 100)")
    g.add_argument("--num-ids", type=int, help="synthetic: identities to generate (default: the generator's)")
    g.add_argument("--no-multi-query", action="store_true", help="market1501/synthetic: no gt_bbox pools")
    g.add_argument("--eval-from", type=int, help="merge: index of the split whose test lists are kept")
    g.add_argument("--verify-images", action="store_true", help="decode every image (slow; default: "
                                                                "check names, presence, non-empty)")
    g.add_argument("--num-classes", type=int, help="fail if a trial has more training identities")
    g = p.add_argument_group("LMDB (data_prep.lmdb_builder)")
    g.add_argument("--lmdb", help="also build this LMDB directory from the split")
    g.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="LMDB image size")
    g.add_argument("--subset", default="train", choices=("train", "val", "query", "gallery", "all"))
    g.add_argument("--trial", type=int, default=0)
    g.add_argument("--augment", type=int, default=0, help="augmented copies per training image")
    return p


def check_outputs(args):
    """Refuse outputs that cannot be written before any dataset is read (a
    parse or a CUHK03 extraction can take minutes)."""
    check_out(args.out)
    if args.lmdb:
        from data_prep.lmdb_builder import KIND  # lazily: the split alone needs no LMDB code
        if os.path.abspath(args.lmdb) == os.path.abspath(args.out):
            raise cli.InputError("--lmdb and --out are both %s" % args.out)
        check_replaceable(os.path.abspath(args.lmdb), kind=KIND)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lmdb and not args.size:
        parser.error("--lmdb needs --size H W")
    if args.size and min(args.size) < 1:
        parser.error("--size must be positive, got %d %d" % tuple(args.size))
    check_outputs(args)
    if args.dataset == "merge":
        split = merge_splits(args.root, args.out, eval_from=args.eval_from,
                             num_classes=args.num_classes)
    else:
        if args.eval_from is not None:
            raise ValueError("--eval-from is for merge only")
        if args.num_ids is not None and args.dataset != "synthetic":
            raise ValueError("--num-ids is for synthetic only")
        if len(args.root) != 1:
            raise ValueError("%s takes one ROOT, got %d" % (args.dataset, len(args.root)))
        split = make_split(args.dataset, args.root[0], args.out,
                           **{opt: getattr(args, opt) for opt in OPTIONS})
    if args.lmdb:
        from data_prep.lmdb_builder import build_lmdb
        # build_lmdb ends with its own summary line (images, ids, cameras, size)
        build_lmdb(split, args.lmdb, args.size[0], args.size[1], trial=args.trial,
                   subset=args.subset, augment=args.augment, seed=split.get("seed", 0),
                   num_classes=args.num_classes, split_path=os.path.abspath(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
