"""Size on disk, for the summary lines of the data commands, and the
free space a failed write reports."""
import errno
import os
import shutil


def disk_size(paths):
    """Bytes of the given files and folders (recursively); missing ones count 0."""
    total = 0
    for p in paths:
        if os.path.isdir(p):
            for d, _, files in os.walk(p):
                total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
        elif os.path.exists(p):
            total += os.path.getsize(p)
    return total


def human(nbytes):
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (nbytes, unit)
        nbytes /= 1024.0


# Below this much free space a failed write is taken for a full disk.
FULL_MARGIN = 16 << 20


def write_failure(path, error, needed=0):
    """An OSError that says why writing `path` failed: the disk is full
    (the error says so, or less is free than `needed` plus a margin), with
    the free space; else the error itself, naming the path."""
    where = path
    while where and not os.path.exists(where):
        where = os.path.dirname(where)
    free = shutil.disk_usage(where or ".").free
    code = getattr(error, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or free < needed + FULL_MARGIN:
        return OSError("%s: the disk is full (%s free%s)" % (
            path, human(free), ", about %s needed" % human(needed) if needed else ""))
    return OSError("%s: writing failed: %s" % (path, error))
