"""Metrics and report of extracted features (or of a score matrix):

    python -m tools.evaluate --features F.npz [F1.npz ...] --protocol market|single-shot \
        [--split S.json] [--paper geng16:table2:Ours] --out DIR
        [--ap trapezoid|step] [--mq-pooling mean|max] [--repeats 10] [--seed 0]
    python -m tools.evaluate --matrix scores.npz --key scores --similarity \
        --protocol single-shot [--paper mtdnet:table1:MTDnet:cuhk03] --out DIR

Features (tools.extract_features) are compared by Euclidean distance (Geng16
SIR). ``market``: the official rule (evaluation/market.py), single query,
plus multi-query when the file holds the ``multi_query`` subset (pools from
the split's trial). ``single-shot``: CMC over seeded random gallery draws.
Several feature files (one per trial) are averaged (mean ± std).
``--matrix`` takes a precomputed queries × gallery matrix with q_pids,
q_cams, g_pids, g_cams (tools.mtdnet_cir --out). ``--paper`` puts the
paper's numbers of that table row beside ours; for a table with settings
(e.g. Geng16 Table 2's single/multi query) the setting follows each result
row unless given.

Writes DIR/results.json, DIR/results.md, DIR/cmc.png and DIR/index.html
(evaluation/evaluate.py
`report`), with where the numbers came from (common.provenance), and prints
results.md. A result without a single valid query (no query has a match in
the gallery) is reported as a warning, on stderr and in the report, not as
0.00.
"""
import argparse
import sys

from common import cli
from evaluation.cmc import REPEATS
from evaluation.evaluate import PROTOCOLS, report
from evaluation.market import AP_RULES
from evaluation.multi_query import POOLING


def build_parser():
    ap = cli.ArgumentParser(
        prog="python -m tools.evaluate", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="CMC and mAP of extracted features (--features, one .npz per trial, from\n"
                    "tools.extract_features) or of a query x gallery matrix (--matrix, from\n"
                    "tools.mtdnet_cir), by Market-1501's rule or single-shot, beside a paper's\n"
                    "row (--paper). Writes OUT/results.json, results.md, cmc.png and\n"
                    "index.html, and prints results.md.",
        epilog="example:\n"
               "  python -m tools.evaluate --features runs/geng16/market_feats.npz --protocol market \\\n"
               "      --paper geng16:table2:Ours --out runs/geng16/report")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--features", nargs="+", help="features .npz (one per trial)")
    src.add_argument("--matrix", help=".npz with a queries × gallery matrix and q/g pids and cams")
    ap.add_argument("--key", default="scores", help="matrix key in --matrix (default: scores)")
    ap.add_argument("--similarity", action="store_true", help="--matrix holds scores (higher = more alike)")
    ap.add_argument("--split", help="split JSON (default: the one the features were extracted from)")
    ap.add_argument("--protocol", required=True, choices=PROTOCOLS)
    ap.add_argument("--paper", help="paper:table:row[:setting], e.g. geng16:table2:Ours")
    ap.add_argument("--ap", default="trapezoid", choices=AP_RULES, help="AP rule (official: trapezoid)")
    ap.add_argument("--mq-pooling", default="mean", choices=POOLING)
    ap.add_argument("--repeats", type=cli.positive_int, default=REPEATS,
                    help="single-shot gallery draws")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--title", help="report title")
    ap.add_argument("--out", required=True, help="report directory")
    return ap


def run(argv=None):
    """Parse `argv` and write the report; returns its paths (the report
    records `argv` as its command)."""
    args = build_parser().parse_args(argv)
    return report(args.out, args.protocol, features=args.features, matrix=args.matrix,
                  key=args.key, similarity=args.similarity, split=args.split, paper=args.paper,
                  ap=args.ap, mq_pooling=args.mq_pooling, repeats=args.repeats, seed=args.seed,
                  title=args.title, command=sys.argv[1:] if argv is None else list(argv))


def main(argv=None):
    with open(run(argv)["results.md"]) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
