"""The teaching notebooks (docs/teaching.md): docs/notebooks/*.py, kept as text
in jupytext's percent format, are the source; this executes each with
nbclient (the venv's ipykernel, from the checkout's root) and writes the
executed .ipynb beside it, outputs included:

    python -m tools.notebooks [NOTEBOOK.py ...]      (default: every one)

A cell that raises stops the build with one line naming the notebook and
the cell (common/cli.py); the .ipynb is written whole or not at all.
"""
import argparse
import glob
import os
import sys

from common import cli
from common.atomic import write_text
from common.config import ROOT

FOLDER = os.path.join(ROOT, "docs", "notebooks")
TIMEOUT = 300        # seconds per cell: each notebook runs in well under five minutes


def sources():
    """Every notebook source under docs/notebooks/, sorted."""
    return sorted(glob.glob(os.path.join(FOLDER, "*.py")))


def execute(source, timeout=TIMEOUT):
    """The notebook of `source` (jupytext percent text) with every cell run;
    a failing cell raises RuntimeError naming the notebook and the cell."""
    if not os.path.isfile(source):
        raise FileNotFoundError("notebook source not found: %s" % source)
    import jupytext
    import nbclient
    nb = jupytext.read(source)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": ROOT}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        cell = next((i for i, c in enumerate(nb.cells)
                     if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        raise RuntimeError("%s: cell %s failed: %s: %s" % (source, cell, err.ename, err.evalue)) from None
    return nb


def build(source, timeout=TIMEOUT):
    """Execute `source` and write its .ipynb beside it; returns that path."""
    nb = execute(source, timeout)
    import nbformat
    out = os.path.splitext(source)[0] + ".ipynb"
    write_text(out, nbformat.writes(nb))
    return out


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.notebooks", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute the teaching notebooks (docs/notebooks/*.py, jupytext percent\n"
                    "text) with nbclient from the checkout's root, and write each executed\n"
                    ".ipynb beside its source, whole or not at all; prints each path.",
        epilog="example:\n  python -m tools.notebooks docs/notebooks/mtdnet_cir_test.py")
    ap.add_argument("notebooks", nargs="*", help="jupytext sources (default: docs/notebooks/*.py)")
    args = ap.parse_args(argv)
    for source in args.notebooks or sources():
        print(os.path.relpath(build(os.path.abspath(source)), ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
