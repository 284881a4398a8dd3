"""Reports of an evaluation: results.json, a Markdown table (Rank-1/5/10/20
and mAP, in percent) with the paper's published numbers for the same table
row beside ours where one exists, and a CMC curve PNG. Each file is written
whole or not at all (common.atomic).

A result row is a dict: {"name", "cmc" (rates in [0, 1], index r = rank
r+1), optional "cmc_std", "mAP", "mAP_std", "trials", "paper" (a
tools.evaluation.papers.lookup dict)}.
"""
import json
import os

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend or state

from common.atomic import atomic_path, write_text

RANKS = (1, 5, 10, 20)       # the ranks of Geng16 Tables 6 and 9 (MTDnet Table 1: 1, 5, 10)
METRICS = tuple("r%d" % r for r in RANKS) + ("mAP",)
HEADERS = tuple("Rank-%d" % r for r in RANKS) + ("mAP",)
SAVED_RANKS = 100   # CMC entries kept in results.json
PLOT_RANKS = 50


def summary(row):
    """{metric: percent or None} of a result row."""
    cmc = np.asarray(row["cmc"], np.float64)
    out = {"r%d" % r: (100.0 * cmc[r - 1] if len(cmc) >= r else None) for r in RANKS}
    out["mAP"] = None if row.get("mAP") is None else 100.0 * row["mAP"]
    return out


def _std(row):
    std = row.get("cmc_std")
    out = {}
    if std is not None:
        out = {"r%d" % r: 100.0 * std[r - 1] for r in RANKS if len(std) >= r}
    if row.get("mAP_std") is not None:
        out["mAP"] = 100.0 * row["mAP_std"]
    return out


def _cell(value, std=None):
    if value is None:
        return "–"
    return "%.2f" % value + (" ± %.2f" % std if std else "")


def paper_label(paper):
    setting = (", " + paper["setting"].replace("_", " ")) if paper["setting"] else ""
    return "%s %s, %s%s" % (paper["paper"], paper["table"].replace("table", "Table "), paper["row"], setting)


def markdown(rows, title):
    """The Markdown table: one line per result, and under it the paper's line."""
    lines = ["# %s" % title, "", "| result | " + " | ".join(HEADERS) + " |",
             "| --- |" + " ---: |" * len(HEADERS)]
    for row in rows:
        ours, std = summary(row), _std(row)
        trials = " (mean of %d trials)" % row["trials"] if row.get("trials", 1) > 1 else ""
        lines.append("| %s%s | %s |" % (row["name"], trials,
                                        " | ".join(_cell(ours[m], std.get(m)) for m in METRICS)))
        paper = row.get("paper")
        if paper:
            lines.append("| paper: %s | %s |" % (paper_label(paper), " | ".join(
                _cell(paper["values"].get(m)) for m in METRICS)))
    lines += ["", "Values in percent; paper rows as published (– : not reported)."]
    return "\n".join(lines) + "\n"


def plot_cmc(rows, path, title, max_rank=PLOT_RANKS):
    """CMC curves (ranks 1..max_rank) with the paper's points as markers."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for row in rows:
        cmc = 100.0 * np.asarray(row["cmc"], np.float64)[:max_rank]
        line, = ax.plot(np.arange(1, len(cmc) + 1), cmc, label=row["name"])
        paper = row.get("paper")
        points = [(r, paper["values"].get("r%d" % r)) for r in RANKS] if paper else []
        points = [(r, v) for r, v in points if v is not None and r <= max_rank]
        if points:
            ax.plot(*zip(*points), "o", color=line.get_color(), mfc="none",
                    label="paper: " + paper_label(paper))
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title)
    ax.set_xlim(1, max_rank)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _jsonable(row):
    out = {"name": row["name"], "summary": summary(row),
           "cmc": [float(v) for v in np.asarray(row["cmc"])[:SAVED_RANKS]]}
    for key in ("mAP", "mAP_std", "trials", "paper", "num_queries", "num_valid"):
        if row.get(key) is not None:
            out[key] = row[key]
    if row.get("cmc_std") is not None:
        out["cmc_std"] = [float(v) for v in np.asarray(row["cmc_std"])[:SAVED_RANKS]]
    return out


def write_report(out_dir, rows, title, meta=None):
    """Write results.json, results.md and cmc.png into `out_dir`; returns
    their paths."""
    if not rows:
        raise ValueError("write_report: no result rows")
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, name) for name in ("results.json", "results.md", "cmc.png")}
    doc = {"title": title, "meta": meta or {}, "results": [_jsonable(r) for r in rows]}
    write_text(paths["results.json"], json.dumps(doc, indent=1, sort_keys=True) + "\n")
    write_text(paths["results.md"], markdown(rows, title))
    plot_cmc(rows, paths["cmc.png"], title)
    return paths
