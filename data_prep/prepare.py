"""The canonical split of a dataset, or a merge of several, as plain
functions (what `python -m data_prep` runs, and what the experiments call):

    make_split(dataset, root, out=None, protocol=None, version=None, ...)
    merge_splits(split_files, out=None, eval_from=None)

Each returns the split (data_prep/split_format.py); given `out`, it is
written there (whole or not at all, an `out` that is a folder refused before
any dataset is read) and a summary line is printed: images, identities,
cameras, size on disk. The options are the command's (its --protocol,
--version, …); one the dataset does not take raises ValueError naming it.
"""
import importlib
import inspect
import os

from data_prep.disk import disk_size, human
from data_prep.errors import check_num_classes
from data_prep.split_format import load_split, save_split

DATASETS = ("market1501", "cuhk03", "viper", "prid2011", "cuhk01", "ilids", "synthetic")
# option -> parse() keyword, passed only when given (the parsers hold the defaults).
PROTOCOL_OPTIONS = {"protocol": "protocol", "version": "version", "image_dir": "image_dir",
                    "seed": "seed", "trials": "num_trials", "num_train": "num_train", "num_val": "num_val",
                    "no_multi_query": "multi_query"}


def protocol_kwargs(dataset, options, parse, verify_images=False):
    """Keyword arguments for `parse` from the options given ({option: value},
    None or False: not given); an option the dataset does not take is an
    error, not silently ignored."""
    accepted = inspect.signature(parse).parameters
    kw = {}
    for opt, key in PROTOCOL_OPTIONS.items():
        value = options.get(opt)
        if value is None or value is False:
            continue
        if key not in accepted:
            raise ValueError("%s does not take --%s" % (dataset, opt.replace("_", "-")))
        kw[key] = False if opt == "no_multi_query" else value
    if verify_images:
        kw["verify_images"] = True
    return kw


def summary(split):
    """images, identities (person ids > 0: junk and distractors excluded),
    cameras (per source dataset), size on disk of the images."""
    images = split["images"]
    ids = {(im.get("dataset"), im["pid"]) for im in images if im["pid"] > 0}
    cams = {(im.get("dataset"), im["cam"]) for im in images}
    size = disk_size(os.path.join(split["root"], im["path"]) for im in images)
    return "%d images, %d identities, %d cameras, %s on disk" % (len(images), len(ids), len(cams), human(size))


def check_out(out):
    """Refuse a split file path that is a folder (before a dataset is read:
    a parse or a CUHK03 extraction can take minutes)."""
    if out is not None and os.path.isdir(out):
        raise IsADirectoryError("--out %s is a folder; give the split file's path" % out)


def _written(split, out, num_classes):
    if num_classes is not None:
        check_num_classes(split, num_classes)
    if out is not None:
        save_split(split, out)
        print("%s: %s -> %s" % (split["dataset"], summary(split), out))
    return split


def make_split(dataset, root, out=None, protocol=None, version=None, image_dir=None, seed=None,
               trials=None, num_train=None, num_val=None, num_ids=None, no_multi_query=False,
               verify_images=False, num_classes=None):
    """The split of `dataset` (one of DATASETS) as distributed under `root`
    (synthetic: the folder data_prep.synthetic generates a Market-1501-layout
    tree in, then parsed as Market-1501). `protocol`, `version`, `image_dir`
    (CUHK03's extracted images; default cuhk03_png/ beside `out`), `seed`,
    `trials`, `num_train`, `num_val`, `num_ids` (synthetic), `no_multi_query`,
    `verify_images` are the parser's options; `num_classes` refuses more
    training identities than a net has. Written to `out` when given."""
    if dataset not in DATASETS:
        raise ValueError("unknown dataset %r; known: %s" % (dataset, ", ".join(DATASETS)))
    check_out(out)
    if num_ids is not None and dataset != "synthetic":
        raise ValueError("--num-ids is for synthetic only")
    options = dict(protocol=protocol, version=version, image_dir=image_dir, seed=seed,
                   trials=trials, num_train=num_train, num_val=num_val,
                   no_multi_query=no_multi_query)
    if dataset == "synthetic":
        from data_prep import market1501, synthetic
        kw = {k: v for k, v in (("seed", seed), ("num_ids", num_ids)) if v is not None}
        tree = synthetic.generate(root, **kw)
        options["seed"] = None  # consumed by the generator; Market's split is fixed
        split = market1501.parse(tree, dataset="synthetic", **protocol_kwargs(
            dataset, options, market1501.parse, verify_images))
        return _written(split, out, num_classes)
    module = importlib.import_module("data_prep." + dataset)
    if dataset == "cuhk03" and image_dir is None and out is not None:
        options["image_dir"] = os.path.join(os.path.dirname(os.path.abspath(out)), "cuhk03_png")
    split = module.parse(root, **protocol_kwargs(dataset, options, module.parse, verify_images))
    return _written(split, out, num_classes)


def merge_splits(split_files, out=None, eval_from=None, num_classes=None):
    """One split of several split files, identities offset so that none
    collide (data_prep/merge.py); the test lists of split number
    `eval_from` are kept (None: each trial's merged). Written to `out` when
    given."""
    from data_prep import merge
    check_out(out)
    if eval_from is not None and not 0 <= eval_from < len(split_files):
        raise ValueError("--eval-from %d is not the index of one of the %d splits"
                         % (eval_from, len(split_files)))
    split = merge.merge_splits([load_split(p) for p in split_files], eval_from=eval_from)
    return _written(split, out, num_classes)
