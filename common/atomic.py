"""Outputs written whole or not at all, and never over what the package did
not make (docs/guarantees.md).

- Every output is written into a temporary sibling `.NAME.tmp-<pid>-…`
  first, then renamed into place (rename is atomic within one file system).
  Temporaries that a killed run left behind (their process is gone) are
  removed by the next write of the same output.
- A folder written whole (an LMDB, an image tree) carries the marker file
  `.reid-made.json`, holding the record of what made it and the names of
  what it held when made. An existing folder is replaced only when it
  carries the marker and holds nothing else (an empty folder loses nothing
  and may be replaced too): anything else is the user's and is refused
  (`NotOurs`), naming the folder, or the file a user added to one of ours.
- `reuse` compares an output's record with the one a run would write: equal
  means the output may be reused, different is refused (`Stale`) unless the
  caller asked to recompute. A result is never reused in silence.
"""
import contextlib
import json
import os
import shutil
import tempfile

MARKER = ".reid-made.json"
_TOOL = "reid"


class NotOurs(FileExistsError):
    """An existing path the package did not make, so will not replace."""


class Stale(ValueError):
    """An output of ours made from other inputs or settings than a run's."""


def _prefix(path):
    return "." + os.path.basename(path) + ".tmp-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def clean_stale_temps(path):
    """Remove the temporaries of `path` left by runs that no longer exist
    (a SIGKILL gives no chance to clean up); returns their names."""
    parent, prefix = os.path.dirname(os.path.abspath(path)), _prefix(path)
    removed = []
    if not os.path.isdir(parent):
        return removed
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue  # another live run's work in progress
        _remove(os.path.join(parent, name))
        removed.append(name)
    return removed


def read_marker(folder):
    """The marker of a folder the package made ({"tool", "kind", "record"}),
    or None when it carries none (or one that is not ours)."""
    try:
        with open(os.path.join(folder, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("tool") == _TOOL else None


def _contents(folder):
    """Relative paths ("/"-separated) of everything under `folder` but the
    marker, sorted; symbolic links are listed, not followed."""
    out = []
    for d, dirs, files in os.walk(folder):
        rel = os.path.relpath(d, folder)
        for name in dirs + files:
            out.append(name if rel == "." else "%s/%s" % (rel.replace(os.sep, "/"), name))
    return sorted(p for p in out if p != MARKER)


def write_marker(folder, kind, record=None):
    """Mark `folder` as made by the package (`kind`: what it is; `record`:
    the JSON-able facts that made it). The marker lists what the folder
    holds now, so that a file added later is known not to be ours."""
    write_text(os.path.join(folder, MARKER),
               json.dumps({"tool": _TOOL, "kind": kind, "record": record or {},
                           "contents": _contents(folder)}, indent=1, sort_keys=True) + "\n")


def _is_empty_dir(path):
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def _our_marker(path, kind=None):
    """The marker of the existing folder `path`; NotOurs unless it is ours
    (and of `kind` when given)."""
    marker = read_marker(path) if os.path.isdir(path) and not os.path.islink(path) else None
    if marker is None:
        what = "folder" if os.path.isdir(path) else "file"
        raise NotOurs("refusing to replace %s: an existing %s this package did not make (no %s "
                      "in it); move it away or choose another output" % (path, what, MARKER))
    if kind is not None and marker.get("kind") != kind:
        raise NotOurs("refusing to replace %s: it holds a %s, not a %s"
                      % (path, marker.get("kind"), kind))
    return marker


def check_replaceable(path, kind=None):
    """Raise NotOurs unless `path` is absent, an empty folder, or a folder of
    ours (of `kind` when given) holding only what it was made with."""
    if not os.path.lexists(path) or _is_empty_dir(path):
        return
    made = _our_marker(path, kind).get("contents")
    if isinstance(made, list):  # markers written before contents were listed: trusted as whole
        extra = sorted(set(_contents(path)) - set(made))
        if extra:
            raise NotOurs("refusing to replace %s: it holds %s, which this package did not make; "
                          "move %s away or choose another output"
                          % (path, os.path.join(path, extra[0]),
                             "it" if len(extra) == 1 else "those %d entries" % len(extra)))


def first_difference(made, wanted, where=""):
    """The first field (dotted path) where two records differ, with both
    values, or None when they are equal."""
    if isinstance(made, dict) and isinstance(wanted, dict):
        for key in sorted(set(made) | set(wanted)):
            diff = first_difference(made.get(key), wanted.get(key), where + "." + key if where else key)
            if diff:
                return diff
        return None
    return None if made == wanted else (where or "record", made, wanted)


def reuse(path, record, recompute=False, kind=None, flag="--recompute"):
    """Whether the folder `path` of ours may be reused for a run whose record
    is `record`: True when it was made from an equal record; False when it
    is absent, or when `recompute` asks for it to be made again. An output
    made from another record raises Stale, naming the first field that
    differs; a path that is not ours raises NotOurs (files added to a
    folder of ours do not prevent its reuse, only its replacement).
    Temporaries of `path` left by dead runs are removed either way: a run
    that reuses the output writes nothing that would clean them."""
    clean_stale_temps(path)
    if not os.path.lexists(path) or _is_empty_dir(path):
        return False
    made = _our_marker(path, kind).get("record")
    diff = first_difference(made, json.loads(json.dumps(record)))
    if diff is None:
        return True
    if recompute:
        return False
    field, old, new = diff
    raise Stale("%s was made with %s = %s, this run has %s: rerun with %s to remake it, or "
                "choose another output" % (path, field, json.dumps(old), json.dumps(new), flag))


@contextlib.contextmanager
def atomic_path(path, is_dir=False, kind=None, record=None):
    """Yield a temporary path beside `path`; on success move it onto `path`.

    A folder (`is_dir`) gets the marker with `kind` and `record` and may
    replace only a folder of ours, of the same `kind` when given (NotOurs
    otherwise, checked before the work starts and again before the rename).
    On an exception the temporary is removed and `path` is left as it was.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    clean_stale_temps(path)
    if is_dir:
        check_replaceable(path, kind)
    elif os.path.isdir(path):
        raise IsADirectoryError("%s is a folder; a file was expected there" % path)
    prefix = _prefix(path) + "%d-" % os.getpid()
    if is_dir:
        tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is not what users expect
    try:
        yield tmp
        if is_dir:
            write_marker(tmp, kind or "output", record)
            check_replaceable(path, kind)
            if os.path.lexists(path):
                old = tempfile.mkdtemp(prefix=prefix, dir=parent)
                os.replace(path, os.path.join(old, "old"))
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
                return
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path, text):
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
