"""The canonical split file: one JSON document per dataset, written by every
parser in data_prep/ and read by everything downstream, which is thereby
dataset-blind (the dgd_person_reid idea; STYLE.md).

    {
      "format": "reid-split/1",
      "dataset": "market1501",          # parser name, or "a+b" after merging
      "root": "/abs/path/Market-1501-v15.09.15",
      "images": [                        # every image the protocol uses
        {"path": "bounding_box_train/0002_c1s1_000451_03.jpg",  # relative to root
         "pid": 2,                       # the dataset's own person id (-1 junk, 0 distractor)
         "cam": 1,                       # camera id, 1-based as in the dataset
         "set": "bounding_box_train"},   # the dataset's own subset/folder name
        ...
      ],
      "trials": [                        # 1 (Market), 20 (CUHK03), 10 (VIPeR …)
        {"name": "trial00",
         "train": [0, 1, ...],           # indices into images
         "train_labels": [0, 0, 1, ...], # contiguous 0..N-1, aligned with train
         "val": [...],                   # may be empty
         "query": [...],
         "gallery": [...],
         "multi_query": {"17": [17, 40, 41]}   # optional (Market): query index -> pooled image indices
        }
      ],
      "protocol": {...},                 # free-form: protocol name, seed, counts
      "seed": 0
    }

Image indices, not paths, link trials to images, so a split stays small and a
merged split is a concatenation with offsets.
"""
import json

from common.atomic import write_text

FORMAT = "reid-split/1"
TRIAL_LISTS = ("train", "val", "query", "gallery")


class SplitError(ValueError):
    """A split file that does not follow the format; the message names the field."""


def _json_kind(value):
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _list_of_objects(split, key, where):
    value = split[key]
    if not isinstance(value, list):
        raise SplitError("%s: '%s' must be a list, got a JSON %s" % (where, key, _json_kind(value)))
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise SplitError("%s: %s[%d] must be an object, got a JSON %s"
                             % (where, key, i, _json_kind(item)))


def validate_split(split, where="split"):
    """Check the structure and the cross-references; raise SplitError naming
    the offending field. Returns the split."""
    if not isinstance(split, dict):
        raise SplitError("%s: not a %s document (a JSON %s, not an object)"
                         % (where, FORMAT, _json_kind(split)))
    if split.get("format") != FORMAT:
        raise SplitError("%s: not a %s document (format=%r)" % (where, FORMAT, split.get("format")))
    for key in ("dataset", "root", "images", "trials"):
        if key not in split:
            raise SplitError("%s: missing key '%s'" % (where, key))
    _list_of_objects(split, "images", where)
    _list_of_objects(split, "trials", where)
    n = len(split["images"])
    for i, im in enumerate(split["images"]):
        for key, kind in (("path", str), ("pid", int), ("cam", int), ("set", str)):
            if not isinstance(im.get(key), kind):
                raise SplitError("%s: images[%d].%s must be %s, got %r" % (where, i, key, kind.__name__, im.get(key)))
    if not split["trials"]:
        raise SplitError("%s: no trials" % where)
    for t, trial in enumerate(split["trials"]):
        for key in TRIAL_LISTS + ("train_labels",):
            if not isinstance(trial.get(key, []), list):
                raise SplitError("%s: trials[%d].%s must be a list, got a JSON %s"
                                 % (where, t, key, _json_kind(trial[key])))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in trial.get("train_labels", [])):
            raise SplitError("%s: trials[%d].train_labels must be integers" % (where, t))
        for key in TRIAL_LISTS:
            for idx in trial.get(key, []):
                if not isinstance(idx, int) or not 0 <= idx < n:
                    raise SplitError("%s: trials[%d].%s holds %r, not an image index in [0, %d)"
                                     % (where, t, key, idx, n))
        labels = trial.get("train_labels", [])
        if len(labels) != len(trial.get("train", [])):
            raise SplitError("%s: trials[%d].train_labels has %d entries for %d train images"
                             % (where, t, len(labels), len(trial.get("train", []))))
        if labels and sorted(set(labels)) != list(range(max(labels) + 1)):
            raise SplitError("%s: trials[%d].train_labels are not contiguous 0..N-1" % (where, t))
    return split


def load_split(path):
    """Read and validate a split file."""
    try:
        with open(path) as f:
            split = json.load(f)
    except FileNotFoundError:
        raise SplitError("split file not found: %s" % path) from None
    except json.JSONDecodeError as err:
        raise SplitError("%s: not JSON (%s)" % (path, err)) from None
    return validate_split(split, where=path)


def save_split(split, path):
    """Validate, then write atomically (whole or not at all)."""
    validate_split(split, where=path)
    write_text(path, json.dumps(split, indent=1, sort_keys=True) + "\n")
