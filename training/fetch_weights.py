"""Download the canonical ImageNet models (docs/caffe.md: bvlc_googlenet
for Geng16, bvlc_reference_caffenet / bvlc_alexnet for MTDnet) from the URL
in Caffe's models/<name>/readme.md, verify the SHA1 given there, and write
them atomically into common.config.WEIGHTS_ROOT:

    python -m tools.fetch_weights [bvlc_googlenet ...] [--dest weights/]

Without network: one message naming the URL and the path to put the file at.
"""
import hashlib
import os
import urllib.error
import urllib.request

from tqdm import tqdm

from common import caffe_env, records
from common.atomic import atomic_path
from common.progress import mininterval
from common.config import WEIGHTS_ROOT

MODELS = ("bvlc_googlenet", "bvlc_reference_caffenet", "bvlc_alexnet")
CHUNK = 1 << 20
TIMEOUT = 60  # seconds without data before giving up


def read_readme(name, models_dir=None):
    """The readme's YAML front matter as a dict of strings (caffemodel,
    caffemodel_url, sha1, …)."""
    path = os.path.join(models_dir or caffe_env.caffe_models_dir(), name, "readme.md")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError("no readme for model '%s' at %s" % (name, path)) from None
    if not lines or lines[0].strip() != "---" or "---" not in [l.strip() for l in lines[1:]]:
        raise ValueError("%s: no '---' front matter" % path)
    end = 1 + [l.strip() for l in lines[1:]].index("---")
    meta = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    for key in ("caffemodel_url", "sha1"):
        if not meta.get(key):
            raise ValueError("%s: front matter has no '%s'" % (path, key))
    meta.setdefault("caffemodel", name + ".caffemodel")
    return meta


def fetch(name, dest_dir=WEIGHTS_ROOT, models_dir=None, opener=urllib.request.urlopen):
    """Path of `name`'s verified .caffemodel under `dest_dir`, downloaded
    unless a file with the right SHA1 is already there."""
    if os.path.exists(dest_dir) and not os.path.isdir(dest_dir):
        # before a download of hundreds of megabytes that could not be written
        raise NotADirectoryError("weights folder %s is an existing file; give a folder" % dest_dir)
    meta = read_readme(name, models_dir)
    url, sha1 = meta["caffemodel_url"], meta["sha1"].lower()
    dest = os.path.join(dest_dir, meta["caffemodel"])
    if os.path.exists(dest) and records.sha1(dest) == sha1:
        return dest
    try:
        response = opener(url, timeout=TIMEOUT)
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError("cannot download %s from %s (%s); fetch it by other means and place "
                           "it at %s (SHA1 %s)" % (name, url, getattr(err, "reason", err), dest,
                                                   sha1)) from None
    with response, atomic_path(dest) as tmp:
        total = int(response.headers.get("Content-Length") or 0) or None
        h = hashlib.sha1()
        with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=name,
                                        mininterval=mininterval()) as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                f.write(chunk)
                h.update(chunk)
                bar.update(len(chunk))
        if h.hexdigest() != sha1:
            raise ValueError("%s from %s has SHA1 %s, the readme says %s; not written to %s"
                             % (name, url, h.hexdigest(), sha1, dest))
    return dest

