"""One command per dataset (issue 5 item 6):

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
folder the package did not make, is refused and left as it is.
"""
import argparse
import importlib
import inspect
import os
import sys

from common import cli
from common.atomic import check_replaceable
from data_prep.disk import disk_size, human
from data_prep.errors import check_num_classes
from data_prep.split_format import load_split, save_split

DATASETS = ("market1501", "cuhk03", "viper", "prid2011", "cuhk01", "ilids", "synthetic", "merge")
# CLI option -> parse() keyword, passed only when given (the parsers hold the defaults).
PROTOCOL_OPTIONS = {"protocol": "protocol", "version": "version", "image_dir": "image_dir",
                    "seed": "seed", "trials": "num_trials", "num_train": "num_train", "num_val": "num_val",
                    "no_multi_query": "multi_query"}


def build_parser():
    p = cli.ArgumentParser(prog="python -m data_prep", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("root", nargs="+", help="dataset root as distributed (merge: split files)")
    p.add_argument("--out", required=True, help="split JSON to write")
    g = p.add_argument_group("protocol (defaults are the papers')")
    g.add_argument("--protocol", help="cuhk03: classic | new (767/700); cuhk01: 485/486 | 871/100")
    g.add_argument("--version", choices=("labeled", "detected"), help="cuhk03 images (default labeled)")
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


def protocol_kwargs(args, parse):
    """Keyword arguments for `parse` from the options the user gave; an
    option the dataset does not take is an error, not silently ignored."""
    accepted = inspect.signature(parse).parameters
    kw = {}
    for opt, key in PROTOCOL_OPTIONS.items():
        value = getattr(args, opt)
        if value is None or value is False:
            continue
        if key not in accepted:
            raise ValueError("%s does not take --%s" % (args.dataset, opt.replace("_", "-")))
        kw[key] = False if opt == "no_multi_query" else value
    if args.verify_images:
        kw["verify_images"] = True
    return kw


def make_split(args):
    if args.dataset == "merge":
        from data_prep.merge import merge_splits
        if args.eval_from is not None and not 0 <= args.eval_from < len(args.root):
            raise ValueError("--eval-from %d is not the index of one of the %d splits"
                             % (args.eval_from, len(args.root)))
        return merge_splits([load_split(p) for p in args.root], eval_from=args.eval_from)
    if args.eval_from is not None:
        raise ValueError("--eval-from is for merge only")
    if args.num_ids is not None and args.dataset != "synthetic":
        raise ValueError("--num-ids is for synthetic only")
    if len(args.root) != 1:
        raise ValueError("%s takes one ROOT, got %d" % (args.dataset, len(args.root)))
    root = args.root[0]
    if args.dataset == "synthetic":
        from data_prep import market1501, synthetic
        kw = {k: v for k, v in (("seed", args.seed), ("num_ids", args.num_ids)) if v is not None}
        tree = synthetic.generate(root, **kw)
        args.seed = None  # consumed by the generator; Market's split is fixed
        return market1501.parse(tree, dataset="synthetic", **protocol_kwargs(args, market1501.parse))
    module = importlib.import_module("data_prep." + args.dataset)
    if args.dataset == "cuhk03" and args.image_dir is None:
        args.image_dir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "cuhk03_png")
    return module.parse(root, **protocol_kwargs(args, module.parse))


def summary(split):
    """images, identities (person ids > 0: junk and distractors excluded),
    cameras (per source dataset), size on disk of the images."""
    images = split["images"]
    ids = {(im.get("dataset"), im["pid"]) for im in images if im["pid"] > 0}
    cams = {(im.get("dataset"), im["cam"]) for im in images}
    size = disk_size(os.path.join(split["root"], im["path"]) for im in images)
    return "%d images, %d identities, %d cameras, %s on disk" % (len(images), len(ids), len(cams), human(size))


def check_outputs(args):
    """Refuse outputs that cannot be written before any dataset is read (a
    parse or a CUHK03 extraction can take minutes)."""
    if os.path.isdir(args.out):
        raise IsADirectoryError("--out %s is a folder; give the split file's path" % args.out)
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
    split = make_split(args)
    if args.num_classes is not None:
        check_num_classes(split, args.num_classes)
    save_split(split, args.out)
    print("%s: %s -> %s" % (split["dataset"], summary(split), args.out))
    if args.lmdb:
        from data_prep.lmdb_builder import build_lmdb
        # build_lmdb ends with its own summary line (images, ids, cameras, size)
        build_lmdb(split, args.lmdb, args.size[0], args.size[1], trial=args.trial,
                   subset=args.subset, augment=args.augment, seed=split.get("seed", 0),
                   num_classes=args.num_classes, split_path=os.path.abspath(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
