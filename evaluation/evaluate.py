"""Metrics and report of extracted features (or of a score matrix), the
library of `python -m tools.evaluate`:

    report(out, protocol="market"|"single-shot", features=[F.npz, ...] | matrix=scores.npz,
           key="scores", similarity=False, split=None, paper="geng16:table2:Ours",
           ap="trapezoid"|"step", mq_pooling="mean"|"max", repeats=10, seed=0, title=None)

Features (evaluation/features.py) are compared by Euclidean distance (Geng16
SIR). ``market``: the official rule (evaluation/market.py), single query,
plus multi-query when the file holds the ``multi_query`` subset (pools from
the split's trial). ``single-shot``: CMC over seeded random gallery draws.
Several feature files (one per trial) are averaged (mean ± std). A matrix
is a precomputed queries × gallery matrix with q_pids, q_cams, g_pids,
g_cams (evaluation/cir.py's scores file). ``paper`` puts the paper's
numbers of that table row beside ours; for a table with settings (e.g.
Geng16 Table 2's single/multi query) the setting follows each result row
unless given.

Writes out/results.json, out/results.md, out/cmc.png, with where the
numbers came from (common.provenance: the step is recorded as the
tools.evaluate command line of the same arguments). A result without a
single valid query (no query has a match in the gallery) is reported as a
warning, on stderr and in the report, not as 0.00.
"""
import json
import os
import sys

import numpy as np

from common import provenance
from data_prep.split_format import load_split
from evaluation import papers
from evaluation.cmc import REPEATS, single_shot_cmc
from evaluation.distance import euclidean
from evaluation.market import AP_RULES, evaluate_market
from evaluation.multi_query import POOLING, pool_features
from evaluation.report import warning, write_report
from evaluation.trials import aggregate
from evaluation.features import load_features
from evaluation.score_matrix import load_matrix

PROTOCOLS = ("market", "single-shot")


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


def _split_files(split, features):
    """The split files the evaluation read: `split`, else each features
    file's own (its meta)."""
    if split:
        return [split]
    found = []
    for path in features or []:
        with np.load(path, allow_pickle=False) as z:
            split = json.loads(str(z["meta"])).get("split")
        if split and split not in found:
            found.append(split)
    return found


def command_line(protocol, features=None, matrix=None, key="scores", similarity=False, split=None,
                 paper=None, ap="trapezoid", mq_pooling="mean", repeats=REPEATS, seed=0,
                 title=None):
    """The `python -m tools.evaluate` arguments (without --out) of this
    evaluation, defaults left out: the step a report records, and what
    steps/stages.py records as having made a report."""
    argv = ["--features"] + list(features) if features is not None else ["--matrix", matrix,
                                                                          "--key", key]
    argv += ["--protocol", protocol]
    argv += ["--title", title] if title else []
    argv += ["--similarity"] if similarity else []
    argv += ["--paper", paper] if paper else []
    argv += ["--split", split] if split else []
    argv += ["--ap", ap] if ap != "trapezoid" else []
    argv += ["--mq-pooling", mq_pooling] if mq_pooling != "mean" else []
    argv += ["--repeats", str(repeats)] if repeats != REPEATS else []
    argv += ["--seed", str(seed)] if seed != 0 else []
    return argv


def report(out, protocol, features=None, matrix=None, key="scores", similarity=False, split=None,
           paper=None, ap="trapezoid", mq_pooling="mean", repeats=REPEATS, seed=0, title=None,
           command=None):
    """Evaluate and write the report into `out`; returns write_report's
    paths. `features`: features files (one per trial), or `matrix`: a score
    or distance matrix .npz (its `key`; `similarity`: higher = more alike).
    `command`: the tools.evaluate argv to record as this step (default: the
    command_line of these arguments). Bad input raises, naming the file or
    option; a result without a valid query is warned about on stderr (and in
    the report)."""
    if (features is None) == (matrix is None):
        raise ValueError("evaluate: give features (one file per trial) or a matrix, not %s"
                         % ("both" if features is not None else "neither"))
    for name, value, known in (("protocol", protocol, PROTOCOLS), ("ap", ap, AP_RULES),
                               ("mq_pooling", mq_pooling, POOLING)):
        if value not in known:
            raise ValueError("%s must be one of %s, got %r" % (name, known, value))
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError("repeats %r: must be a positive integer (single-shot gallery draws)"
                         % (repeats,))
    features = None if features is None else list(features)
    options = dict(features=features, matrix=matrix, key=key, similarity=similarity, split=split,
                   protocol=protocol, paper=paper, ap=ap, mq_pooling=mq_pooling, repeats=repeats,
                   seed=seed, title=title, out=out)
    if command is None:
        command = command_line(**{k: v for k, v in options.items() if k != "out"}) + ["--out", out]
    own = provenance.step("tools.evaluate", command)
    own["options"] = options
    first = "single_query" if protocol == "market" else "single_shot"
    _paper(paper, first)  # a bad spec fails before the work
    if matrix:
        res = evaluate_matrix(*load_matrix(matrix, key), protocol=protocol, similarity=similarity,
                              ap=ap, repeats=repeats, seed=seed)
        per_trial = [{first: res}]
        sources = [matrix]
    else:
        loaded = load_split(split) if split else None
        per_trial = [evaluate_features(p, protocol, loaded, ap, mq_pooling, repeats, seed)
                     for p in features]
        sources = features
    rows = result_rows(per_trial, paper)
    for row in rows:
        if warning(row):
            sys.stderr.write("warning: %s\n" % warning(row))
    title = title or "%s evaluation of %s" % (protocol, os.path.basename(sources[0]))
    meta = {"sources": [os.path.abspath(s) for s in sources], "protocol": protocol, "ap": ap,
            "mq_pooling": mq_pooling, "repeats": repeats, "seed": seed,
            "source_sha1": provenance.split_checksums(sources)}
    return write_report(out, rows, title, meta,
                        provenance.gather(own, splits=_split_files(split, features)))
