"""Metrics and report of extracted features (or of a score matrix):

    python -m tools.evaluate --features F.npz [F1.npz ...] --protocol market|single-shot \
        [--split S.json] [--paper geng16:table2:Ours] --out DIR
        [--ap trapezoid|step] [--mq-pooling mean|max] [--repeats 10] [--seed 0]
    python -m tools.evaluate --matrix scores.npz --key scores --similarity \
        --protocol single-shot [--paper mtdnet:table1:MTDnet:cuhk03] --out DIR

Features (tools.extract_features) are compared by Euclidean distance (Geng16
SIR). ``market``: the official rule (tools/evaluation/market.py), single
query, plus multi-query when the file holds the ``multi_query`` subset (pools
from the split's trial). ``single-shot``: CMC over seeded random gallery
draws. Several feature files (one per trial) are averaged (mean ± std).
``--matrix`` takes a precomputed queries × gallery matrix with q_pids,
q_cams, g_pids, g_cams (tools/mtdnet_cir.py --out). ``--paper`` puts the
paper's numbers of that table row beside ours; for a table with settings
(e.g. Geng16 Table 2's single/multi query) the setting follows each result
row unless given.

Writes DIR/results.json, DIR/results.md, DIR/cmc.png, with where the
numbers came from (common.provenance). A result without a single valid
query (no query has a match in the gallery) is reported as a warning, on
stderr and in the report, not as 0.00.
"""
import json
import os
import sys

import numpy as np

from common import cli
from common import provenance
from data_prep.split_format import load_split
from tools.evaluation import papers
from tools.evaluation.cmc import REPEATS, single_shot_cmc
from tools.evaluation.distance import euclidean
from tools.evaluation.market import AP_RULES, evaluate_market
from tools.evaluation.multi_query import POOLING, pool_features
from tools.evaluation.report import warning, write_report
from tools.evaluation.trials import aggregate
from tools.extract_features import load_features

PROTOCOLS = ("market", "single-shot")
MATRIX_KEYS = ("q_pids", "q_cams", "g_pids", "g_cams")


def valid_single_shot(q_pids, q_cams, g_pids, g_cams):
    """How many queries have a gallery image of their identity from another
    camera (the only ones a single-shot draw can match)."""
    q_pids, q_cams = np.asarray(q_pids).reshape(-1), np.asarray(q_cams).reshape(-1)
    g_pids, g_cams = np.asarray(g_pids).reshape(-1), np.asarray(g_cams).reshape(-1)
    return int(sum(np.any((g_pids == p) & (g_cams != c)) for p, c in zip(q_pids, q_cams)))


def evaluate_matrix(matrix, q_pids, q_cams, g_pids, g_cams, protocol, similarity=False,
                    ap="trapezoid", repeats=REPEATS, seed=0):
    """{"cmc", "mAP" (market only), ...} of one matrix under `protocol`."""
    if protocol == "market":
        res = evaluate_market(matrix, q_pids, q_cams, g_pids, g_cams, ap=ap, similarity=similarity)
        return {"cmc": res["cmc"], "mAP": res["mAP"], "num_queries": res["num_queries"],
                "num_valid": res["num_valid"]}
    if protocol == "single-shot":
        return {"cmc": single_shot_cmc(matrix, q_pids, q_cams, g_pids, g_cams, repeats=repeats,
                                       seed=seed, similarity=similarity), "mAP": None,
                "num_queries": int(np.size(q_pids)),
                "num_valid": valid_single_shot(q_pids, q_cams, g_pids, g_cams)}
    raise ValueError("protocol must be one of %s, got %r" % (PROTOCOLS, protocol))


def evaluate_features(path, protocol, split=None, ap="trapezoid", mq_pooling="mean",
                      repeats=REPEATS, seed=0):
    """{setting: result} of one features file: "single_query" (market) or
    "single_shot", and "multi_query" where the file holds its subset."""
    subsets, meta = load_features(path)
    for name in ("query", "gallery"):
        if name not in subsets:
            raise ValueError("%s: no '%s' features (extract --subsets query gallery)" % (path, name))
    q, g = subsets["query"], subsets["gallery"]
    kw = dict(protocol=protocol, ap=ap, repeats=repeats, seed=seed)
    dist = euclidean(q["features"], g["features"])
    out = {"single_query" if protocol == "market" else "single_shot":
           evaluate_matrix(dist, q["pids"], q["cams"], g["pids"], g["cams"], **kw)}
    if protocol == "market" and "multi_query" in subsets:
        split = split or load_split(meta["split"])
        trial = split["trials"][meta["trial"]]
        mq = subsets["multi_query"]
        pooled = pool_features(mq["features"], mq["index"], trial.get("multi_query", {}), q["index"],
                               mq_pooling)
        out["multi_query"] = evaluate_matrix(euclidean(pooled, g["features"]), q["pids"], q["cams"],
                                             g["pids"], g["cams"], **kw)
    return out


def _paper(spec, setting):
    """The paper row for one result setting (None without a spec)."""
    if not spec:
        return None
    if len(spec.split(":")) == 3:
        try:
            return papers.lookup(spec)
        except KeyError:  # the table has settings: take the result's own
            return papers.lookup(spec + ":" + setting)
    return papers.lookup(spec)


def result_rows(per_trial, paper=None):
    """Report rows from [{setting: result}] (one dict per trial). A row whose
    every trial had no valid query carries num_valid 0 (the report shows no
    numbers for it); one where only some trials had none, a warning."""
    rows = []
    for setting in per_trial[0]:
        agg = aggregate([t[setting] for t in per_trial])
        row = {"name": setting.replace("_", " "), "cmc": agg["cmc"], "trials": agg["trials"],
               "mAP": agg["mAP"], "paper": _paper(paper, setting)}
        if agg["trials"] > 1:
            row["cmc_std"], row["mAP_std"] = agg["cmc_std"], agg["mAP_std"]
        for key in ("num_queries", "num_valid"):
            if len(per_trial) == 1 and key in per_trial[0][setting]:
                row[key] = per_trial[0][setting][key]
        empty = [n for n, t in enumerate(per_trial) if t[setting].get("num_valid") == 0]
        if len(per_trial) > 1 and len(empty) == len(per_trial):
            row["num_valid"] = 0
        elif len(per_trial) > 1 and empty:
            row["warning"] = ("%s: trial(s) %s had no valid query (no query has a match in the "
                              "gallery) and count as 0 in the mean"
                              % (row["name"], ", ".join(map(str, empty))))
        rows.append(row)
    return rows


def build_parser():
    ap = cli.ArgumentParser(description="CMC / mAP of extracted features, with a report")
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


def load_matrix(path, key):
    """(matrix, q_pids, q_cams, g_pids, g_cams) of a --matrix .npz."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError("score matrix file not found: %s" % path) from None
    except (ValueError, OSError) as err:
        raise ValueError("%s: not a score matrix .npz (%s)" % (path, cli.message(err))) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("%s: a single array (.npy); --matrix takes an .npz holding '%s' and %s"
                         % (path, key, ", ".join(MATRIX_KEYS)))
    with z:
        missing = [k for k in (key,) + MATRIX_KEYS if k not in z.files]
        if missing:
            raise ValueError("%s: no key '%s'; keys: %s" % (path, missing[0], ", ".join(z.files)))
        return tuple(z[k] for k in (key,) + MATRIX_KEYS)


def _split_files(args):
    """The split files the evaluation read: --split, else each features
    file's own (its meta)."""
    if args.split:
        return [args.split]
    found = []
    for path in args.features or []:
        with np.load(path, allow_pickle=False) as z:
            split = json.loads(str(z["meta"])).get("split")
        if split and split not in found:
            found.append(split)
    return found


def run(argv):
    """Evaluate and write the report; returns write_report's paths. Bad
    input raises, naming the file or option; a result without a valid query
    is warned about on stderr (and in the report)."""
    own = provenance.step("tools.evaluate", argv)
    args = build_parser().parse_args(argv)
    own["options"] = {k: v for k, v in vars(args).items() if k != "debug"}
    first = "single_query" if args.protocol == "market" else "single_shot"
    _paper(args.paper, first)  # a bad spec fails before the work
    if args.matrix:
        res = evaluate_matrix(*load_matrix(args.matrix, args.key), protocol=args.protocol,
                              similarity=args.similarity, ap=args.ap, repeats=args.repeats,
                              seed=args.seed)
        per_trial = [{first: res}]
        sources = [args.matrix]
    else:
        split = load_split(args.split) if args.split else None
        per_trial = [evaluate_features(p, args.protocol, split, args.ap, args.mq_pooling,
                                       args.repeats, args.seed) for p in args.features]
        sources = args.features
    rows = result_rows(per_trial, args.paper)
    for row in rows:
        if warning(row):
            sys.stderr.write("warning: %s\n" % warning(row))
    title = args.title or "%s evaluation of %s" % (args.protocol, os.path.basename(sources[0]))
    meta = {"sources": [os.path.abspath(s) for s in sources], "protocol": args.protocol, "ap": args.ap,
            "mq_pooling": args.mq_pooling, "repeats": args.repeats, "seed": args.seed,
            "source_sha1": provenance.split_checksums(sources)}
    return write_report(args.out, rows, title, meta,
                        provenance.gather(own, splits=_split_files(args)))


def main(argv=None):
    with open(run(argv)["results.md"]) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
