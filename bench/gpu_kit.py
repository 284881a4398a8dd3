"""The GPU kit (caffe_build/gpu_kit.sh) on the machine it was carried to:
unpack it and find that machine's own CUDA libraries. Imports no pycaffe: it
runs before the loader can find it.

    python -m bench.gpu_kit KIT_DIR DEST      (tools/gpu_check.sh runs it)

prints shell assignments: KIT_ROOT (the unpacked kit, under DEST, reused
when already there) and CUDA_LIB_DIRS (the folders holding the CUDA
libraries Caffe links, from NVIDIA's wheels on sys.path; empty where the
loader finds them already).
"""
import argparse
import ctypes
import glob
import json
import os
import shlex
import shutil
import sys
import tarfile

from common import cli

ARCHIVE = "reid-gpu-kit.tar.xz"
MANIFEST = "manifest.json"
# The CUDA 13 sonames the kit's Caffe links (its manifest lists them too).
CUDA_SONAMES = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10")


def read_manifest(kit_dir):
    path = os.path.join(kit_dir, MANIFEST)
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError("%s: no GPU kit here (make gpu-kit makes one)" % path) from None
    except ValueError as err:
        raise ValueError("%s: not a GPU kit manifest (%s)" % (path, err)) from None
    for key in ("key", "archive"):
        if key not in doc:
            raise ValueError("%s: not a GPU kit manifest (no %r)" % (path, key))
    return doc


def unpack(kit_dir, dest):
    """The unpacked kit's folder under `dest`, named by the kit's key; an
    earlier unpacking of the same kit is reused."""
    doc = read_manifest(kit_dir)
    archive = os.path.join(kit_dir, doc["archive"])
    if not os.path.isfile(archive):
        raise FileNotFoundError("%s: the kit's archive is missing" % archive)
    root = os.path.join(dest, "reid-gpu-kit-" + doc["key"])
    if os.path.isfile(os.path.join(root, ".unpacked")):
        return root
    part = root + ".part"
    shutil.rmtree(part, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(part, filter="data")
    shutil.rmtree(root, ignore_errors=True)
    os.rename(part, root)
    open(os.path.join(root, ".unpacked"), "w").close()
    return root


def _loadable(soname):
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def cuda_lib_dirs(paths=None):
    """Folders that hold CUDA_SONAMES: NVIDIA's wheels (nvidia/<pkg>/lib under
    an entry of sys.path) first; a library the loader finds on its own needs
    none. Raises naming what is nowhere."""
    found = {}
    for entry in sys.path if paths is None else paths:
        for d in sorted(glob.glob(os.path.join(entry, "nvidia", "*", "lib"))):
            for so in CUDA_SONAMES:
                if so not in found and os.path.exists(os.path.join(d, so)):
                    found[so] = d
    missing = [so for so in CUDA_SONAMES if so not in found and not _loadable(so)]
    if missing:
        raise cli.Failure("the CUDA libraries %s are neither in NVIDIA's wheels on this Python's "
                          "path (nvidia-cuda-runtime, nvidia-cublas, nvidia-curand) nor known to "
                          "the loader" % ", ".join(missing))
    dirs = []
    for so in CUDA_SONAMES:
        if so in found and found[so] not in dirs:
            dirs.append(found[so])
    return dirs


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m bench.gpu_kit", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\nPrints shell assignments: KIT_ROOT (the "
                    "unpacked kit under dest)\nand CUDA_LIB_DIRS (the folders of the CUDA "
                    "libraries Caffe links).",
        epilog="example (as tools/gpu_check.sh runs it):\n  python -m bench.gpu_kit gpu-kit /tmp")
    ap.add_argument("kit_dir", help="the folder make gpu-kit made")
    ap.add_argument("dest", help="where to unpack it")
    args = ap.parse_args(argv)
    root = unpack(args.kit_dir, args.dest)
    print("KIT_ROOT=%s" % shlex.quote(root))
    print("CUDA_LIB_DIRS=%s" % shlex.quote(":".join(cuda_lib_dirs())))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
