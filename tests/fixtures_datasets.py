"""Small dataset trees in each dataset's real layout and naming, written by
the tests themselves (images with PIL, tiny so that the real counts —
PRID's 385/749, CUHK01's 971×4, VIPeR's 632×2 — stay cheap). CUHK03 is a
MATLAB v7.3 file: HDF5 with a 512-byte user block, cells as datasets of
object references into ``#refs#``, arrays stored transposed, empty cells as
MATLAB's 2-element placeholder with ``MATLAB_empty``."""
import os

import h5py
import numpy as np
from PIL import Image


def tiny_image(seed, h=8, w=4):
    """A deterministic uint8 RGB image, different per seed."""
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)


def write_image(path, seed=0, h=8, w=4):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(tiny_image(seed, h, w)).save(path)
    return path


# --- Market-1501 ----------------------------------------------------------

MARKET_TRAIN_IDS = (2, 7, 10)          # two images each, cameras 1 and 2
MARKET_TEST_IDS = (1, 3, 5)             # gallery: cameras 1, 2, 3 each
MARKET_JUNK = ("-1_c1s1_000401_03.jpg", "-1_c2s1_000676_01.jpg")
MARKET_DISTRACTORS = ("0000_c1s1_000151_01.jpg", "0000_c3s1_000251_02.jpg", "0000_c6s1_000551_01.jpg")


def market_name(pid, cam, frame, box=1):
    return "%04d_c%ds1_%06d_%02d.jpg" % (pid, cam, frame, box)


def make_market(root):
    """Market-1501-v15.09.15/ under root. Query: for every test id, one
    image in camera 1 and one in camera 2. gt_bbox: per test id and camera
    1: the query's own file + 2 more frames; camera 2: the query's file
    only; camera 4: 1 frame nobody queries."""
    top = os.path.join(root, "Market-1501-v15.09.15")
    seed = 0

    def put(folder, name):
        nonlocal seed
        seed += 1
        write_image(os.path.join(top, folder, name), seed)

    for pid in MARKET_TRAIN_IDS:
        for cam in (1, 2):
            put("bounding_box_train", market_name(pid, cam, 100 + cam))
    for pid in MARKET_TEST_IDS:
        for cam in (1, 2, 3):
            put("bounding_box_test", market_name(pid, cam, 200 + cam))
        for cam in (1, 2):
            put("query", market_name(pid, cam, 300 + cam))
        put("gt_bbox", market_name(pid, 1, 301))
        put("gt_bbox", market_name(pid, 1, 311))
        put("gt_bbox", market_name(pid, 1, 321))
        put("gt_bbox", market_name(pid, 2, 302))
        put("gt_bbox", market_name(pid, 4, 304))
    for name in MARKET_JUNK + MARKET_DISTRACTORS:
        put("bounding_box_test", name)
    with open(os.path.join(top, "bounding_box_test", "Thumbs.db"), "wb") as f:
        f.write(b"\0" * 16)  # the real archive carries these; parsers must ignore them
    return top


# --- VIPeR, PRID2011, CUHK01, i-LIDS ----------------------------------------

def make_viper(root, num_ids=632):
    top = os.path.join(root, "VIPeR")
    for pid in range(num_ids):
        write_image(os.path.join(top, "cam_a", "%03d_45.bmp" % pid), pid)
        write_image(os.path.join(top, "cam_b", "%03d_90.bmp" % pid), 10000 + pid)
    return top


def make_prid(root, num_a=385, num_b=749):
    top = os.path.join(root, "prid_2011")
    for n in range(1, num_a + 1):
        write_image(os.path.join(top, "single_shot", "cam_a", "person_%04d.png" % n), n)
    for n in range(1, num_b + 1):
        write_image(os.path.join(top, "single_shot", "cam_b", "person_%04d.png" % n), 10000 + n)
    return top


def make_cuhk01(root, num_ids=971):
    top = os.path.join(root, "CUHK01")
    for pid in range(1, num_ids + 1):
        for index in range(1, 5):
            write_image(os.path.join(top, "campus", "%04d%03d.png" % (pid, index)), 10 * pid + index)
    return top


def ilids_counts(num_ids=119, total=476):
    """Images per person: 4 each (476 = 119 × 4 in the real set); uneven
    counts are exercised by the tests through `counts`."""
    base, extra = divmod(total, num_ids)
    return [base + (1 if i < extra else 0) for i in range(num_ids)]


def make_ilids(root, counts=None):
    counts = ilids_counts() if counts is None else counts
    top = os.path.join(root, "i-LIDS_Pedestrian")
    for pid, n in enumerate(counts, start=1):
        for index in range(1, n + 1):
            write_image(os.path.join(top, "Persons", "%04d%03d.jpg" % (pid, index)), 100 * pid + index)
    return top


# --- CUHK03 (MATLAB v7.3) ----------------------------------------------------

MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2014 HDF5 schema 1.00 ."


class _MatWriter:
    """Writes MATLAB v7.3 cells: every element a dataset under #refs#."""

    def __init__(self, f):
        self.f, self.refs, self.n = f, f.require_group("#refs#"), 0

    def _name(self):
        self.n += 1
        return "r%d" % self.n

    def array(self, arr, matlab_class):
        ds = self.refs.create_dataset(self._name(), data=np.asarray(arr).T)  # MATLAB is column-major
        ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
        return ds.ref

    def empty(self):
        ds = self.refs.create_dataset(self._name(), data=np.zeros(2, np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        ds.attrs["MATLAB_empty"] = np.uint8(1)
        return ds.ref

    def cell(self, refs, where=None, name=None):
        refs = np.asarray(refs, dtype=object).T
        group = self.refs if where is None else where
        ds = group.create_dataset(name or self._name(), data=refs, dtype=h5py.ref_dtype)
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
        return ds.ref


CUHK03_PERSONS = (12, 9, 6, 3, 2)     # per camera pair (the real file: 843, 440, 77, 58, 49)


def cuhk03_testsets(persons=CUHK03_PERSONS, num=20, per_set=4):
    """20 testsets of `per_set` (pair, person) from pairs 1–3, deterministic."""
    rng = np.random.RandomState(3)
    pool = [(p, n) for p in (1, 2, 3) for n in range(1, persons[p - 1] + 1)]
    return [[pool[i] for i in sorted(rng.choice(len(pool), per_set, replace=False))] for _ in range(num)]


def cuhk03_empty_cells(pair, person):
    """Cells (0-based) left empty: the 5th of each view for every 3rd person
    (the real file has missing images, mostly in cells 5 and 10)."""
    return (4, 9) if person % 3 == 0 else ()


def make_cuhk03(root, persons=CUHK03_PERSONS, testsets=None, keys=("labeled", "detected", "testsets"),
                bad_cell=None):
    """cuhk03_release/cuhk-03.mat. bad_cell=(pair, person, cell), 1-based:
    that cell holds a 2-D array that is neither image nor empty."""
    top = os.path.join(root, "cuhk03_release")
    os.makedirs(top, exist_ok=True)
    path = os.path.join(top, "cuhk-03.mat")
    testsets = cuhk03_testsets(persons) if testsets is None else testsets
    with h5py.File(path, "w", userblock_size=512) as f:
        w = _MatWriter(f)
        for v, version in enumerate(("labeled", "detected")):
            if version not in keys:
                continue
            pair_refs = []
            for p, count in enumerate(persons, start=1):
                cells = np.empty((count, 10), dtype=object)
                for n in range(1, count + 1):
                    for c in range(10):
                        if c in cuhk03_empty_cells(p, n):
                            cells[n - 1, c] = w.empty()
                        elif bad_cell == (p, n, c + 1):
                            cells[n - 1, c] = w.array(np.ones((5, 7)), "double")
                        else:
                            img = tiny_image(100000 * v + 1000 * p + 10 * n + c, h=6 + c % 3, w=3)
                            cells[n - 1, c] = w.array(img, "uint8")
                pair_refs.append(w.cell(cells))
            w.cell(np.array([pair_refs], dtype=object), where=f, name=version)
        if "testsets" in keys:
            sets = [w.array(np.array(ts, np.float64), "double") for ts in testsets]
            w.cell(np.array([sets], dtype=object), where=f, name="testsets")
    with open(path, "r+b") as fh:  # MATLAB's text header lives in the user block
        fh.write(MAT_HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    return top


def cuhk03_file_list(persons=CUHK03_PERSONS):
    """The 767/700 protocol's filelist naming for every non-empty cell."""
    names = []
    for p, count in enumerate(persons, start=1):
        for n in range(1, count + 1):
            for c in range(10):
                if c not in cuhk03_empty_cells(p, n):
                    names.append("%d_%03d_%d_%02d.png" % (p, n, 1 if c < 5 else 2, c + 1))
    return names


def make_cuhk03_new_config(top, version, train, query, gallery, names):
    """cuhk03_new_protocol_config_<version>.mat (MATLAB v5, as released)
    with 1-based indices into `names`."""
    import scipy.io
    files = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        files[i, 0] = n
    scipy.io.savemat(os.path.join(top, "cuhk03_new_protocol_config_%s.mat" % version),
                     {"filelist": files,
                      "train_idx": np.array(train, float).reshape(-1, 1) + 1,
                      "query_idx": np.array(query, float).reshape(-1, 1) + 1,
                      "gallery_idx": np.array(gallery, float).reshape(-1, 1) + 1})
