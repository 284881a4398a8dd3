"""Bad dataset input, reported once and clearly: the
exception every parser raises, and the checks they share — folders present,
file names in the dataset's naming, no duplicates, files present and
non-empty (optionally fully decoded), training labels within a net's
identity count. Each message is one line naming the file, folder or field."""
import os
import re

from tqdm import tqdm

from data_prep.images import ImageError, load_bgr


class DatasetError(ValueError):
    """A dataset that does not look as distributed; the message names the
    file, folder or field at fault."""


def find_root(root, required, dataset, nested=()):
    """The folder under `root` that holds every entry of `required`.

    Users point at the extracted download; some point one level up (the
    archive's own top folder, e.g. ``Market-1501-v15.09.15``). `nested` lists
    such known top folders, tried in order after `root` itself.
    """
    if not os.path.isdir(root):
        raise DatasetError("%s root not found or not a folder: %s" % (dataset, root))
    cands = [root] + [os.path.join(root, n) for n in nested]
    present = [[r for r in required if os.path.exists(os.path.join(c, r))] for c in cands]
    for cand, have in zip(cands, present):
        if len(have) == len(required):
            return os.path.abspath(cand)
    # the folder that holds the most of the dataset (e.g. single_shot/ with
    # cam_a alone) is where the rest is missing
    best = max(range(len(cands)), key=lambda k: (len(present[k]), -k))
    cand = cands[best]
    missing = [r for r in required if r not in present[best]]
    found = sorted(os.listdir(cand))[:8] if os.path.isdir(cand) else []
    raise DatasetError("%s root %s: missing %s (found: %s)"
                       % (dataset, cand, ", ".join(repr(m) for m in missing),
                          ", ".join(found) or "nothing"))


def list_named(folder, pattern, exts, dataset):
    """Sorted (name, match) for the files of `folder` with an extension in
    `exts` (case-insensitive). Files with other extensions (Thumbs.db, …) are
    ignored; an image whose name does not follow `pattern` is an error."""
    if not os.path.isdir(folder):
        raise DatasetError("%s: folder not found: %s" % (dataset, folder))
    regex = re.compile(pattern, re.IGNORECASE)  # extensions come as .jpg and .JPG
    out = []
    for name in sorted(os.listdir(folder)):
        if os.path.splitext(name)[1].lower() not in exts:
            continue
        m = regex.fullmatch(name)
        if m is None:
            raise DatasetError("%s: file name %s does not follow the dataset's naming (%s)"
                               % (dataset, os.path.join(folder, name), pattern))
        out.append((name, m))
    if not out:
        raise DatasetError("%s: no %s images in %s" % (dataset, "/".join(sorted(exts)), folder))
    return out


def check_unique(keys_and_paths, dataset, what):
    """Raise on two files that stand for the same image (same `key`), e.g.
    ``0002_c1s1_000451_03.jpg`` and ``.JPG``, or two VIPeR files with one
    prefix in one camera."""
    seen = {}
    for key, path in keys_and_paths:
        if key in seen:
            raise DatasetError("%s: duplicate %s %s: %s and %s" % (dataset, what, key, seen[key], path))
        seen[key] = path


def check_files(root, paths, dataset, verify=False):
    """Every file exists and is non-empty; with `verify`, decodes each one
    (load_bgr) so that an unreadable or truncated image fails here, naming
    it, rather than during LMDB building or training."""
    for rel in tqdm(paths, desc="%s: %s images" % (dataset, "verifying" if verify else "checking"),
                    unit="img", leave=False, disable=None):
        path = os.path.join(root, rel)
        try:
            size = os.path.getsize(path)
        except OSError:
            raise DatasetError("%s: image not found: %s" % (dataset, path)) from None
        if size == 0:
            raise DatasetError("%s: empty image file: %s" % (dataset, path))
        if verify:
            try:
                load_bgr(path)
            except ImageError as err:
                raise DatasetError("%s: %s" % (dataset, err)) from None


def check_num_classes(split, num_classes, trial=None):
    """Raise if a trial's training labels do not fit a classifier of
    `num_classes` outputs (a label ≥ num_classes would make Caffe's
    SoftmaxWithLoss abort the process instead of raising)."""
    trials = range(len(split["trials"])) if trial is None else [trial]
    for t in trials:
        labels = split["trials"][t].get("train_labels", [])
        if labels and max(labels) >= num_classes:
            raise DatasetError("%s: trials[%d].train_labels go up to %d, beyond the net's %d identities"
                               % (split.get("dataset", "split"), t, max(labels), num_classes))


def camera_folder_images(root, folders, pattern, exts, dataset, pid_of, what="person number"):
    """Images of the datasets laid out as one folder per camera (VIPeR,
    PRID2011), one image per person per camera, the person number in the
    name's first group. Returns (images, where) with where[(number, cam)] =
    image index; `pid_of(number, cam)` gives the split's person id."""
    images, where = [], {}
    for cam, folder in enumerate(folders, start=1):
        names = list_named(os.path.join(root, folder), pattern, exts, dataset)
        check_unique([(int(m.group(1)), "%s/%s" % (folder, n)) for n, m in names], dataset,
                     "%s in %s" % (what, folder))
        for name, m in tqdm(names, desc="%s: %s" % (dataset, folder), unit="img", leave=False,
                            disable=None):
            where[(int(m.group(1)), cam)] = len(images)
            images.append({"path": "%s/%s" % (folder, name), "pid": pid_of(int(m.group(1)), cam),
                           "cam": cam, "set": folder})
    return images, where
