"""Outputs written whole or not at all: into a temporary sibling first, then
renamed into place (rename is atomic within one file system)."""
import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path, is_dir=False):
    """Yield a temporary path beside `path`; on success move it onto `path`.

    On an exception the temporary file or folder is removed and `path` is
    left as it was.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    prefix = "." + os.path.basename(path) + ".tmp-"
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
        if is_dir and os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
