"""What made a single output file, kept beside it, so that it is reused
only for the same inputs (docs/guarantees.md, "Never reused in silence").

A folder carries its record in common.atomic's marker; a file (a
.caffemodel, a features .npz, a report folder written by another module)
gets a sidecar `<path>.record.json`. `reuse_file` compares it with the
record a run would write, with common.atomic's rule and wording: equal is
reused, different is refused (Stale) unless the caller asks to recompute.
"""
import hashlib
import json
import os

from common.atomic import Stale, first_difference, write_text

DECIDES_RESULTS = False   # records what made an output (common/code_fingerprint.py)

SIDECAR = ".record.json"


def sha1(path, chunk=1 << 20):
    """SHA-1 hex digest of a file's bytes."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar(path):
    return os.path.normpath(path) + SIDECAR


def read_record(path):
    """The record kept beside `path`, or None without one."""
    try:
        with open(sidecar(path)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_record(path, record):
    write_text(sidecar(path), json.dumps(record, indent=1, sort_keys=True) + "\n")


def check(what, made, wanted, recompute=False, flag="--recompute"):
    """True when `made` equals `wanted` (JSON-wise); False when they differ
    and `recompute` asks to remake; else Stale naming the first difference.
    `made` None: an output with no record (an older version made it)."""
    if made is None:
        if recompute:
            return False
        raise Stale("%s has no record of what made it: rerun with %s to remake it, or choose "
                    "another output" % (what, flag))
    diff = first_difference(made, json.loads(json.dumps(wanted)))
    if diff is None:
        return True
    if recompute:
        return False
    field, old, new = _first_line_difference(*diff)
    raise Stale("%s was made with %s = %s, this run has %s: rerun with %s to remake it, or "
                "choose another output" % (what, field, json.dumps(old), json.dumps(new), flag))


def _first_line_difference(field, old, new):
    """For texts (a net, a solver): the first line that differs, not the
    whole text."""
    if not (isinstance(old, str) and isinstance(new, str) and "\n" in old + new):
        return field, old, new
    a, b = old.splitlines(), new.splitlines()
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    line = lambda lines: lines[k].strip() if k < len(lines) else "(end)"  # noqa: E731
    return "%s line %d" % (field, k + 1), line(a), line(b)


def reuse_file(path, record, recompute=False, flag="--recompute"):
    """Whether the existing output `path` may be reused for `record` (False
    when absent or to be remade; Stale when made otherwise). A remake's old
    record is removed first, so an output never stands beside a record it
    was not made from."""
    if not os.path.lexists(path):
        return False
    if check(path, read_record(path), record, recompute, flag):
        return True
    if os.path.lexists(sidecar(path)):
        os.remove(sidecar(path))
    return False
