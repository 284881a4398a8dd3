"""LMDB of a split's images for Caffe (layout "reid-lmdb/1").

A directory ``NAME.lmdb/`` that Caffe's own ``Data`` layer reads
(``backend: LMDB``): keys ``b"%08d" % i`` in index order, values serialized
``caffe_pb2.Datum`` (raw uint8 BGR, C×H×W, ``label`` = contiguous training
label or -1 where the image has none). Beside LMDB's files, ``index.json``
gives each entry's label, person id, camera and source file, which the
identity samplers (layers/identity_sampled_data.py, layers/triplet_data.py)
read instead of scanning the database.

The database is written into a temporary sibling and renamed into place only
when complete (common.atomic): an unreadable image, a full disk or Ctrl-C
leaves no half-written LMDB behind. Its marker records what made it
(`lmdb_record`: the split file's SHA-1, trial, subset, size, augment, seed,
format), so a run reuses only an LMDB made from the same inputs, and it
replaces only a folder of its own kind. Opening one checks LMDB's own
statistics against the index and the file size, so that a truncated
data.mdb is refused by name instead of killing the process with SIGBUS.

Optional offline augmentation (Geng16 §5.2): `augment` random 2D transforms
about the centre per training image (data_prep/augment.py), stored right
after their source image.
"""
import hashlib
import json
import os
import threading

import lmdb
import numpy as np
from tqdm import tqdm

from common import caffe_env  # noqa: F401  (quiets glog before caffe loads)
from caffe.proto import caffe_pb2
from common import records
from common.progress import mininterval
from common.atomic import atomic_path
from common.layout import INDEX
from data_prep.augment import augment_copies
from data_prep.disk import disk_size, human, write_failure
from data_prep.images import load_bgr, resize_bgr

FORMAT = "reid-lmdb/1"
KIND = "reid-lmdb"       # the common.atomic marker's kind
SUBSETS = ("train", "val", "query", "gallery", "all")
INDEX_LISTS = ("label", "pid", "cam", "source")
COMMIT_EVERY = 1000   # entries per write transaction


class LmdbError(ValueError):
    """An LMDB or its index that does not follow reid-lmdb/1, or a build
    request that cannot be honoured; the message names the path or field."""


def key(i):
    return b"%08d" % i


def subset_entries(split, trial, subset):
    """(image indices, labels) of one subset of one trial. Only "train" has
    labels (the trial's contiguous train_labels); "all" labels the training
    images and gives -1 to the rest."""
    if subset not in SUBSETS:
        raise LmdbError("subset must be one of %s, got %r" % (", ".join(SUBSETS), subset))
    trials = split["trials"]
    if not 0 <= trial < len(trials):
        raise LmdbError("%s: trial %d does not exist (the split has %d)"
                        % (split.get("dataset", "split"), trial, len(trials)))
    t = trials[trial]
    if subset == "train":
        return list(t["train"]), list(t["train_labels"])
    if subset == "all":
        train_label = dict(zip(t["train"], t["train_labels"]))
        idx = list(range(len(split["images"])))
        return idx, [train_label.get(i, -1) for i in idx]
    idx = list(t.get(subset, []))
    return idx, [-1] * len(idx)


def split_sha1(split, split_path=None):
    """SHA-1 of the split file's bytes, or, for a split held only in memory,
    of its canonical JSON (what split_format.save_split would write)."""
    if split_path is not None:
        return records.sha1(split_path)
    return hashlib.sha1((json.dumps(split, indent=1, sort_keys=True) + "\n").encode()).hexdigest()


def lmdb_record(sha1, trial, subset, height, width, augment, seed):
    """What an LMDB is made from, as its marker records it (common.atomic)."""
    return {"format": FORMAT, "split_sha1": sha1, "trial": trial, "subset": subset,
            "size": [height, width], "augment": augment, "seed": seed}


def make_datum(chw, label):
    """A raw Datum (uint8 C×H×W) as Caffe's convert_imageset writes it."""
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = chw.shape
    datum.data = np.ascontiguousarray(chw, np.uint8).tobytes()
    datum.label = int(label)
    return datum


def build_lmdb(split, out_dir, height, width, trial=0, subset="train", augment=0, seed=0,
               num_classes=None, split_path=None, verbose=True):
    """Write the images of `subset` of trial `trial` of the loaded split
    `split`, resized to height × width, as a reid-lmdb/1 directory `out_dir`
    (whole or not at all). With `augment` = n > 0 (train only), each image
    is followed by n randomly transformed copies (seeded by `seed`).
    `num_classes`: refuse labels ≥ it (a classifier of that many outputs
    would make Caffe abort). Shows a progress bar and prints a summary line
    when `verbose`. Returns
    `out_dir`."""
    if height < 1 or width < 1:
        raise LmdbError("LMDB image size must be positive, got %dx%d" % (height, width))
    if augment < 0 or (augment and subset != "train"):
        raise LmdbError("augment must be >= 0 and is for the train subset only, got %d for %r"
                        % (augment, subset))
    indices, labels = subset_entries(split, trial, subset)
    if not indices:
        raise LmdbError("%s: trial %d has no %s images" % (split.get("dataset", "split"), trial, subset))
    if num_classes is not None and max(labels) >= num_classes:
        bad = indices[int(np.argmax(labels))]
        raise LmdbError("%s: label %d of %s is beyond the net's %d identities"
                        % (split.get("dataset", "split"), max(labels), split["images"][bad]["path"],
                           num_classes))
    copies = 1 + augment
    count = len(indices) * copies
    entry_bytes = 3 * height * width + 64
    map_size = max(1 << 24, int(count * entry_bytes * 1.5))  # LMDB grows its file as used
    rng = np.random.RandomState(seed)
    index = {"format": FORMAT, "count": count, "height": height, "width": width,
             "dataset": split.get("dataset", ""), "split": split_path, "trial": trial,
             "subset": subset, "augment": augment, "label": [], "pid": [], "cam": [], "source": []}
    out_dir = os.path.abspath(out_dir)
    record = lmdb_record(split_sha1(split, split_path), trial, subset, height, width, augment, seed)
    with atomic_path(out_dir, is_dir=True, kind=KIND, record=record) as tmp:
        try:
            env = lmdb.open(tmp, map_size=map_size, subdir=True, meminit=False)
        except (lmdb.Error, OSError) as e:
            raise write_failure(out_dir, e, count * entry_bytes) from None
        try:
            txn = env.begin(write=True)
            n = 0
            for i, label in zip(tqdm(indices, desc="LMDB %s" % os.path.basename(out_dir), unit="img",
                                     disable=not verbose,
                                     mininterval=mininterval()),
                                labels):
                im = split["images"][i]
                img = resize_bgr(load_bgr(os.path.join(split["root"], im["path"])), height, width)
                for version in [img] + augment_copies(img, augment, rng):
                    txn.put(key(n), make_datum(version.transpose(2, 0, 1), label).SerializeToString())
                    index["label"].append(int(label))
                    index["pid"].append(im["pid"])
                    index["cam"].append(im["cam"])
                    index["source"].append(im["path"])
                    n += 1
                    if n % COMMIT_EVERY == 0:
                        txn.commit()
                        txn = env.begin(write=True)
            txn.commit()
            with open(os.path.join(tmp, INDEX), "w") as f:
                json.dump(index, f)
        except (lmdb.Error, OSError) as e:
            # LMDB reports a full disk as an I/O error of its commit
            raise write_failure(out_dir, e, count * entry_bytes) from None
        finally:
            env.close()
    if verbose:
        ids = {pid for pid in index["pid"] if pid > 0}  # junk (-1) and distractors (0) are no one
        print("LMDB %s: %d images (%d sources x %d), %d identities, %d cameras, %s on disk"
              % (out_dir, count, len(indices), copies, len(ids), len(set(index["cam"])),
                 human(disk_size([out_dir]))))
    return out_dir


def read_index(lmdb_dir):
    """The validated index.json of a reid-lmdb/1 directory."""
    path = os.path.join(lmdb_dir, INDEX)
    if not os.path.isdir(lmdb_dir):
        raise LmdbError("LMDB directory not found: %s" % lmdb_dir)
    try:
        with open(path) as f:
            index = json.load(f)
    except FileNotFoundError:
        raise LmdbError("%s: no %s (not built by data_prep.lmdb_builder?)" % (lmdb_dir, INDEX)) from None
    except json.JSONDecodeError as err:
        raise LmdbError("%s: not JSON (%s)" % (path, err)) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise LmdbError("%s: not a %s index (format=%r)"
                        % (path, FORMAT, index.get("format") if isinstance(index, dict) else None))
    for field in ("count", "height", "width"):
        if not isinstance(index.get(field), int) or index[field] < 0:
            raise LmdbError("%s: '%s' must be a non-negative integer, got %r" % (path, field, index.get(field)))
    for field in INDEX_LISTS:
        if not isinstance(index.get(field), list) or len(index[field]) != index["count"]:
            raise LmdbError("%s: '%s' must be a list of count=%d entries" % (path, field, index["count"]))
    return index


_ENVS = {}                 # real path -> [lmdb.Environment, open readers]
_ENVS_LOCK = threading.Lock()


def check_env(env, lmdb_dir, count):
    """Raise LmdbError unless the opened environment holds `count` entries
    and data.mdb holds every page LMDB says it uses: a read past the end of
    a truncated file is a SIGBUS, which no Python code can catch."""
    stat, info = env.stat(), env.info()  # both read the meta pages only
    data = os.path.join(lmdb_dir, "data.mdb")
    need, have = (info["last_pgno"] + 1) * stat["psize"], os.path.getsize(data)
    if have < need:
        raise LmdbError("%s: %d bytes, but the database's pages need %d: the file is truncated; "
                        "rebuild the LMDB" % (data, have, need))
    if stat["entries"] != count:
        raise LmdbError("%s: the database holds %d entries, %s says count=%d"
                        % (lmdb_dir, stat["entries"], INDEX, count))


def _open_env(path, count):
    """One read-only environment per LMDB per process, shared by its readers
    (LMDB refuses to open one environment twice in a process, yet a train
    and a test net may well read the same LMDB); checked on first open."""
    with _ENVS_LOCK:
        entry = _ENVS.get(path)
        if entry is None:
            try:
                env = lmdb.open(path, readonly=True, lock=False, readahead=False, subdir=True,
                                max_readers=256)
            except lmdb.Error as err:  # its text starts with the path already
                raise LmdbError("not a readable LMDB: %s" % err) from None
            try:
                check_env(env, path, count)
            except BaseException:
                env.close()
                raise
            entry = _ENVS[path] = [env, 0]
        entry[1] += 1
        return entry[0]


def _close_env(path):
    with _ENVS_LOCK:
        entry = _ENVS.get(path)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                entry[0].close()
                del _ENVS[path]


class LmdbImages:
    """Random access to the images of a reid-lmdb/1 directory (read-only,
    no lock file needed, safe to call from several threads)."""

    def __init__(self, lmdb_dir):
        index = read_index(lmdb_dir)
        self.path = lmdb_dir
        self.count = index["count"]
        self.shape = (3, index["height"], index["width"])
        self._real = os.path.realpath(lmdb_dir)
        self.env = _open_env(self._real, self.count)

    def __len__(self):
        return self.count

    def _read(self, txn, i, out):
        if not 0 <= i < self.count:
            raise IndexError("%s: image %d out of range [0, %d)" % (self.path, i, self.count))
        raw = txn.get(key(i))
        if raw is None:
            raise LmdbError("%s: key %s missing" % (self.path, key(i).decode()))
        datum = caffe_pb2.Datum()
        datum.ParseFromString(raw)
        if datum.encoded or (datum.channels, datum.height, datum.width) != self.shape:
            raise LmdbError("%s: entry %d is %s %dx%dx%d, index says raw %dx%dx%d"
                            % (self.path, i, "encoded" if datum.encoded else "raw", datum.channels,
                               datum.height, datum.width, *self.shape))
        out[...] = np.frombuffer(datum.data, np.uint8).reshape(self.shape)

    def get(self, i):
        """Image i as uint8 C×H×W (BGR)."""
        return self.get_many([i])[0]

    def get_many(self, indices, out=None):
        """Images `indices` as uint8 N×C×H×W (BGR), into `out` if given."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        if out is None:
            out = np.empty((len(indices),) + self.shape, np.uint8)
        with self.env.begin(buffers=True) as txn:
            for k, i in enumerate(indices):
                self._read(txn, int(i), out[k])
        return out

    def close(self):
        if self.env is not None:
            self.env = None
            _close_env(self._real)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
