"""GPU architectures compiled into a CUDA shared library (e.g. libcaffe.so),
read from its fatbin headers (caffe_build/fatbin_archs.py):

    python -m tools.fatbin_archs lib/libcaffe.so.1.0.0   ->  sm_90
"""
import argparse
import sys

from common import cli
from caffe_build.fatbin_archs import fatbin_archs


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.fatbin_archs", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the GPU architectures (sm_XX) compiled into CUDA shared libraries,\n"
                    "read from their fatbin headers; exit 1 for a library without device code.",
        epilog='example:\n  python -m tools.fatbin_archs "$(cat .venv/caffe-prefix)/lib/libcaffe.so"')
    ap.add_argument("paths", nargs="+", metavar="LIBRARY")
    for path in ap.parse_args(argv).paths:
        with open(path, "rb") as f:
            archs = fatbin_archs(f.read())
        print("%s: %s" % (path, ", ".join(sorted(archs)) or "no device code"))
        if not archs:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
