"""Diagrams of the generated nets, drawn by Caffe's own `caffe.draw`
(pydot + Debian's graphviz), for docs/teaching.md.

    python -m tools.draw_nets [--out docs/diagrams] [FAMILY ...]    (make diagrams)

Every net definition under prototxt/<family>/ (solvers are skipped) becomes
<out>/<family>/<name>.png (a family's selection in diagrams.SELECTED only);
each path written is printed (networks/diagrams.py).
"""
import argparse
import os
import sys

from common import cli
from common.config import ROOT
from networks.diagrams import OUT, draw, net_files


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.draw_nets", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Draw the net definitions under prototxt/<family>/ (solvers skipped; a\n"
                    "family in networks/diagrams.py SELECTED: those nets only) with Caffe's own\n"
                    "caffe.draw as OUT/<family>/<name>.png (default OUT: docs/diagrams), and\n"
                    "print each path written.",
        epilog="example:\n  python -m tools.draw_nets mtdnet --out /tmp/diagrams")
    ap.add_argument("families", nargs="*", help="prototxt/ subfolders (default: all)")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    for family, path in net_files(args.families):
        out = os.path.join(args.out, family, os.path.basename(path)[:-len(".prototxt")] + ".png")
        draw(path, out)
        print(os.path.relpath(out, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
