"""python -m bench [NAME ...]: run the benchmarks (all `bench_*` modules, or
the ones named) and print each figure as a ratio against its reference."""
import argparse
import importlib
import os
import pkgutil
import sys

from common import cli


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    names = [m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_")]
    ap = cli.ArgumentParser(
        prog="python -m bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the benchmarks (every bench_* module, or the NAMEs given) and print\n"
                    "each figure as a ratio against a reference measured in the same run.\n"
                    "Reads no input; writes only temporary files.",
        epilog="example:\n  python -m bench market_eval data_layer")
    ap.add_argument("names", nargs="*", metavar="NAME", help="benchmarks (default: all)")
    args = ap.parse_args(argv)
    wanted = [a if a.startswith("bench_") else "bench_" + a for a in args.names]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError("unknown benchmark(s) %s; known: %s"
                         % (", ".join(unknown), ", ".join(sorted(names))))
    for name in sorted(wanted or names):
        module = importlib.import_module("bench." + name)
        print("== %s: %s" % (name, (module.__doc__ or "").strip().splitlines()[0]), flush=True)
        for result in module.run():
            print("  " + result.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
