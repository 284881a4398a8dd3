"""CUHK03 as distributed (Li et al. 2014; Geng16 §5.1; MTDnet, Dataset and
settings; docs/reproducing.md): ``cuhk03_release/cuhk-03.mat``, a MATLAB v7.3
(HDF5) file read with h5py.

- ``labeled`` / ``detected``: 5 object references, one per camera pair.
  Dereferenced and transposed (``f[ref][()].T``), a pair is an N×10 array of
  image references: cells 1–5 are view 1, cells 6–10 view 2. An image comes
  out H×W×3 uint8 RGB after the transpose; an empty cell holds a tiny
  non-image array (skipped and counted).
- ``testsets``: 20 references, each 100×2 of (pair, person), 1-based.

The images live inside the .mat, so they are extracted once to PNG files,
``IMAGE_DIR/<labeled|detected>/{pair}_{person:03d}_{view}_{cell:02d}.png``
(the naming of the 767/700 protocol's ``filelist``), written whole or not at
all, and reused by later runs of the same .mat (its path, size and mtime are
the folder's common.atomic record); a ``labeled``/``detected`` folder the
package did not make is refused, never emptied. The split's root is that
image folder.

Ids in the split: person id = 1000·pair + person (unique over the 5 pairs);
camera = 2·(pair − 1) + view, so the two views of a pair are cameras 2p−1
and 2p.

Protocols:
- "classic" (default; Geng16 and MTDnet: "1,360 identities … 100 for
  testing, another 100 for validation, whilst the remaining 1160 for
  training", the 20 standard splits of Li et al.): trial t tests the persons
  of ``testsets{t}`` (query = view 1, gallery = view 2; the single-shot CMC
  draws one gallery image per person, docs/evaluation.md); 100 validation
  persons are drawn (seeded) from the others of camera pairs 1–3; the rest
  (1160) train.
- "new" (767/700, Zhong et al. 2017; optional): one trial read from
  ``cuhk03_new_protocol_config_<version>.mat`` (train_idx, query_idx,
  gallery_idx into filelist), looked for beside ``cuhk-03.mat`` and in the
  folder above it.
"""
import json
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from common.atomic import atomic_path, reuse, write_text
from common.config import SPLIT_SEED
from data_prep.errors import DatasetError, check_files, find_root
from data_prep.images import ImageError, load_bgr
from data_prep.merge import make_split, make_trial, random_halves, trial_rng

MAT_NAME = "cuhk-03.mat"
TOP_FOLDER = "cuhk03_release"
VERSIONS = ("labeled", "detected")
NUM_PAIRS = 5
CELLS = 10                   # per person: cells 1–5 view 1, 6–10 view 2
CLASSIC_PAIRS = (1, 2, 3)    # the papers' 1,360 persons: 843 + 440 + 77
NUM_VAL = 100                # validation persons per trial (Geng16 §5.1)
NUM_TESTSETS = 20
NEW_CONFIG = "cuhk03_new_protocol_config_%s.mat"
FILE_NAME = "%d_%03d_%d_%02d.png"
MANIFEST = "manifest.json"
KIND = "cuhk03-images"       # the common.atomic marker's kind


def pid_of(pair, person):
    return 1000 * pair + person


def cam_of(pair, view):
    return 2 * (pair - 1) + view


def _open_mat(path):
    import h5py  # only CUHK03 needs it
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DatasetError("%s: not a MATLAB v7.3 (HDF5) file (%s)" % (path, err)) from None


def _refs(f, key, count, mat_path):
    if key not in f:
        raise DatasetError("%s: missing key '%s' (keys: %s)" % (mat_path, key, ", ".join(sorted(f.keys()))))
    refs = np.asarray(f[key][()]).ravel()
    if refs.dtype != object or len(refs) != count:
        raise DatasetError("%s: '%s' should hold %d object references, got %s %s"
                           % (mat_path, key, count, refs.dtype, f[key].shape))
    return refs


def _cell_image(f, ref, field):
    """The H×W×3 uint8 RGB image of a cell, or None for an empty cell."""
    try:
        arr = f[ref][()].T
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError("%s: broken object reference (%s)" % (field, err)) from None
    if arr.ndim == 3 and arr.shape[2] == 3:
        if arr.dtype != np.uint8 or min(arr.shape[:2]) < 2:
            raise DatasetError("%s: not an image (array %s %s)" % (field, arr.dtype, arr.shape))
        return np.ascontiguousarray(arr)
    if arr.size <= 4:  # MATLAB's [] is stored as a 2-element placeholder
        return None
    raise DatasetError("%s: neither an image nor an empty cell (array %s %s)" % (field, arr.dtype, arr.shape))


def _mat_stamp(mat_path):
    st = os.stat(mat_path)
    return {"mat": os.path.abspath(mat_path), "size": st.st_size, "mtime": int(st.st_mtime)}


def extract(mat_path, version, image_dir, verify_images=False):
    """Extract one version's images to PNG under ``image_dir/version``
    (once: a complete earlier extraction of the same .mat is reused).
    Returns the manifest: {"images": [{"file", "pair", "person", "view",
    "cell"}...], "empty": number of empty cells skipped, "source": ...}."""
    if version not in VERSIONS:
        raise DatasetError("cuhk03: unknown version %r (choose labeled or detected)" % version)
    out = os.path.join(image_dir, version)
    stamp = _mat_stamp(mat_path)
    record = {"source": stamp, "version": version}
    if reuse(out, record, recompute=True, kind=KIND):  # another .mat: extracted again
        with open(os.path.join(out, MANIFEST)) as fh:
            manifest = json.load(fh)
        check_files(out, [r["file"] for r in manifest["images"]], "cuhk03", verify=verify_images)
        return manifest
    records, empty = [], 0
    with _open_mat(mat_path) as f, atomic_path(out, is_dir=True, kind=KIND, record=record) as tmp:
        pairs = _refs(f, version, NUM_PAIRS, mat_path)
        for p, pair_ref in enumerate(pairs, start=1):
            cells = f[pair_ref][()].T
            if cells.ndim != 2 or cells.shape[1] != CELLS or cells.dtype != object:
                raise DatasetError("%s: %s{%d} should be an N×%d cell array of images, got %s %s"
                                   % (mat_path, version, p, CELLS, cells.dtype, cells.shape))
            for n in tqdm(range(cells.shape[0]), desc="cuhk03 %s: extracting pair %d" % (version, p),
                          unit="person", leave=False, disable=None):
                for c in range(CELLS):
                    field = "%s: %s{%d}(%d,%d)" % (mat_path, version, p, n + 1, c + 1)
                    img = _cell_image(f, cells[n, c], field)
                    if img is None:
                        empty += 1
                        continue
                    view = 1 if c < CELLS // 2 else 2
                    name = FILE_NAME % (p, n + 1, view, c + 1)
                    path = os.path.join(tmp, name)
                    Image.fromarray(img).save(path)
                    try:  # read back: the PNG must be what later stages will load
                        back = load_bgr(path)
                    except ImageError as err:
                        raise DatasetError("%s: %s" % (field, err)) from None
                    if back.shape != img.shape:
                        raise DatasetError("%s: PNG read back as %s, not %s" % (field, back.shape, img.shape))
                    records.append({"file": name, "pair": p, "person": n + 1, "view": view, "cell": c + 1})
        manifest = {"images": records, "empty": empty, "source": stamp}
        write_text(os.path.join(tmp, MANIFEST), json.dumps(manifest) + "\n")
    return manifest


def _testsets(f, mat_path):
    out = []
    for t, ref in enumerate(_refs(f, "testsets", NUM_TESTSETS, mat_path), start=1):
        arr = np.asarray(f[ref][()]).T
        if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isin(arr[:, 0], range(1, NUM_PAIRS + 1))):
            raise DatasetError("%s: testsets{%d} should be K×2 of (pair 1-5, person), got %s"
                               % (mat_path, t, arr.shape))
        out.append(sorted({pid_of(int(p), int(n)) for p, n in arr}))
    return out


def _find_new_config(root, version):
    name = NEW_CONFIG % version
    for d in (root, os.path.dirname(root)):
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    raise DatasetError("cuhk03: protocol 'new' needs %s beside %s or in its parent folder"
                       % (name, os.path.join(root, MAT_NAME)))


def _new_protocol(config_path, name_to_index):
    import scipy.io  # only the optional protocol needs it
    try:
        cfg = scipy.io.loadmat(config_path)
    except Exception as err:  # scipy raises several types for a bad file
        raise DatasetError("%s: cannot be read as a MATLAB file (%s)" % (config_path, err)) from None
    for key in ("filelist", "train_idx", "query_idx", "gallery_idx"):
        if key not in cfg:
            raise DatasetError("%s: missing key '%s'" % (config_path, key))
    files = [str(np.asarray(x).ravel()[0]) if np.size(x) else "" for x in np.asarray(cfg["filelist"]).ravel()]
    lists = {}
    for key in ("train_idx", "query_idx", "gallery_idx"):
        idx = np.asarray(cfg[key]).ravel().astype(int) - 1   # MATLAB 1-based
        if idx.size and (idx.min() < 0 or idx.max() >= len(files)):
            raise DatasetError("%s: %s holds indices outside filelist (1-%d)" % (config_path, key, len(files)))
        out = []
        for i in idx:
            if files[i] not in name_to_index:
                raise DatasetError("%s: filelist entry %r has no extracted image (empty cell or bad name)"
                                   % (config_path, files[i]))
            out.append(name_to_index[files[i]])
        lists[key] = out
    return lists


def parse(root, version="labeled", protocol="classic", image_dir=None, pairs=CLASSIC_PAIRS,
          num_val=NUM_VAL, seed=SPLIT_SEED, verify_images=False):
    """image_dir: where the PNGs are extracted (default: ``cuhk03_png`` beside
    cuhk-03.mat)."""
    dataset = "cuhk03"
    if protocol not in ("classic", "new"):
        raise DatasetError("cuhk03: unknown protocol %r (choose classic or new)" % protocol)
    if version not in VERSIONS:
        raise DatasetError("cuhk03: unknown version %r (choose labeled or detected)" % version)
    root = find_root(root, [MAT_NAME], dataset, nested=(TOP_FOLDER,))
    mat_path = os.path.join(root, MAT_NAME)
    image_dir = os.path.abspath(image_dir or os.path.join(root, "cuhk03_png"))
    with _open_mat(mat_path) as f:
        _refs(f, version, NUM_PAIRS, mat_path)
        testsets = _testsets(f, mat_path) if protocol == "classic" else None
    manifest = extract(mat_path, version, image_dir, verify_images=verify_images)
    all_images = [{"path": "%s/%s" % (version, r["file"]), "pid": pid_of(r["pair"], r["person"]),
                   "cam": cam_of(r["pair"], r["view"]), "set": version} for r in manifest["images"]]
    info = {"name": "cuhk03-" + protocol, "version": version, "mat": mat_path,
            "empty_cells": manifest["empty"]}

    if protocol == "new":
        config = _find_new_config(root, version)
        lists = _new_protocol(config, {r["file"]: i for i, r in enumerate(manifest["images"])})
        trial = make_trial(all_images, "trial00", train=lists["train_idx"], query=lists["query_idx"],
                           gallery=lists["gallery_idx"])
        info.update(config=config, train_ids=len(set(trial["train_labels"])))
        return make_split(dataset, image_dir, all_images, [trial], info, seed)

    test_pids = set().union(*testsets)
    keep = [i for i, im in enumerate(all_images)
            if im["pid"] // 1000 in pairs or im["pid"] in test_pids]
    images = [all_images[i] for i in keep]
    by_pid = {}
    for i, im in enumerate(images):
        by_pid.setdefault(im["pid"], []).append(i)
    pool = sorted(p for p in by_pid if p // 1000 in pairs)
    trials = []
    for t, test in enumerate(testsets):
        test_set = set(test)
        rest = [p for p in pool if p not in test_set]
        if len(rest) <= num_val:
            raise DatasetError("cuhk03: %d persons outside testsets{%d}, not enough for %d validation persons"
                               % (len(rest), t + 1, num_val))
        val_ids, train_ids = random_halves(rest, num_val, trial_rng(seed, t))
        test_imgs = [i for p in test for i in by_pid.get(p, [])]
        trials.append(make_trial(images, "trial%02d" % t,
                                 train=[i for p in train_ids for i in by_pid[p]],
                                 val=[i for p in val_ids for i in by_pid[p]],
                                 query=[i for i in test_imgs if images[i]["cam"] % 2 == 1],
                                 gallery=[i for i in test_imgs if images[i]["cam"] % 2 == 0]))
    info.update(pairs=list(pairs), ids=len(by_pid), train_ids=len(set(trials[0]["train_labels"])),
                val_ids=num_val, test_ids=len(testsets[0]), trials=len(testsets))
    return make_split(dataset, image_dir, images, trials, info, seed)
