"""The data a result was made from, by content: a dataset folder or a
weights file as a fingerprint that names what it holds, not where it lies.

A folder's *listing* (every file's relative path, size and modification
time; hidden files left out) takes a stat per file: seconds for Market's
36k images. Its *content* fingerprint hashes each file's bytes under its
relative path, so the same dataset under another path, copied or moved,
has the same fingerprint, and a rewritten, added or removed image changes
it. Contents are hashed again only when the listing changed (a cache keeps
listing → content), or always with `verify` (a file rewritten with its
size and time kept is found only that way).
"""
import hashlib
import json
import os

from common.atomic import write_text
from common.records import sha1

DECIDES_RESULTS = False   # names data; the data itself decides
HASH_CHARS = 16


def _files(root):
    """Sorted (relative path, size, mtime_ns) of the files under root."""
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            st = os.stat(path)
            out.append((os.path.relpath(path, root).replace(os.sep, "/"), st.st_size,
                        st.st_mtime_ns))
    return out


def _listing_digest(files):
    return hashlib.sha1(json.dumps(files).encode()).hexdigest()


def _content_digest(root, files):
    digest = hashlib.sha1()
    for rel, _, _ in files:
        digest.update(("%s\0%s\n" % (rel, sha1(os.path.join(root, rel)))).encode())
    return digest.hexdigest()


class Cache:
    """listing digest → content fingerprint, kept in one JSON file (the
    store's), so that an unchanged folder is not read again."""

    def __init__(self, path=None):
        self.path = path
        self.entries = {}
        if path and os.path.isfile(path):
            try:
                with open(path) as f:
                    self.entries = json.load(f)
            except (OSError, ValueError):
                self.entries = {}

    def get(self, listing):
        return self.entries.get(listing)

    def put(self, listing, entry):
        self.entries[listing] = entry
        if self.path:
            write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True) + "\n")


def fingerprint(path, cache=None, verify=False):
    """{"content": digest, "files": n, "bytes": total} of a folder (its
    files' bytes under their relative paths) or of a file (its bytes).
    `verify`: hash the contents even where the cache knows the listing."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        files = _files(path)
    else:
        st = os.stat(path)
        files = [("", st.st_size, st.st_mtime_ns)]
    listing = _listing_digest([path, files])
    cache = cache if cache is not None else Cache()
    known = cache.get(listing)
    if known and not verify:
        return known
    content = _content_digest(path, files) if os.path.isdir(path) else sha1(path)
    entry = {"content": content, "files": len(files), "bytes": sum(f[1] for f in files)}
    if entry != known:
        cache.put(listing, entry)
    return entry


def short(entry):
    """The fingerprint as a stage id and a report name it."""
    return entry["content"][:HASH_CHARS]
