"""Reports of an evaluation: results.json, a Markdown table (Rank-1/5/10/20
and mAP, in percent) with the paper's published numbers for the same table
row beside ours where one exists, and a CMC curve PNG. Each file is written
whole or not at all (common.atomic).

A result row is a dict: {"name", "cmc" (rates in [0, 1], index r = rank
r+1), optional "cmc_std", "mAP", "mAP_std", "trials", "seeds" (the
mean and std are over that many training seeds; "per_seed": each one's
figures), "paper" (a evaluation.papers.lookup dict), "num_queries",
"num_valid", "warning"}. A row without a single valid query (no query had a match)
shows no numbers, only its warning: 0.00 would read as a measured result.

Every report ends with where its numbers came from (common.provenance):
results.json holds the whole record, results.md a footer.

index.html shows it all on one page: the table beside the
paper's rows, the CMC, ranked lists (visrank.py), and per training stage of
the run its curves (curves.py) and net diagram (caffe.draw). A picture that
cannot be drawn (the images are gone, graphviz is missing) is named on the
page with the reason; the numbers are written regardless.
"""
import json
import os

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend or state

from common import cli
from common import provenance as prov
from common.atomic import atomic_path, write_text
from common.layout import CMC_PNG, PAGE, RESULTS_JSON, RESULTS_MD
from evaluation import curves, html_report, visrank
from networks import diagrams

NET = "train.prototxt"   # a training stage's net (training/two_step.py, steps/stages.train)
DIAGRAMS = ".diagrams"   # in the run's folder: each net's picture, drawn once for every report

RANKS = (1, 5, 10, 20)       # the ranks of Geng16 Tables 6 and 9 (MTDnet Table 1: 1, 5, 10)
METRICS = tuple("r%d" % r for r in RANKS) + ("mAP",)
HEADERS = tuple("Rank-%d" % r for r in RANKS) + ("mAP",)
SAVED_RANKS = 100   # CMC entries kept in results.json
PLOT_RANKS = 50


def no_valid_query(row):
    """True when the row was evaluated over queries none of which had a match."""
    return row.get("num_valid") == 0


def warning(row):
    """The warning text of a row (None when it has none)."""
    if row.get("warning"):
        return row["warning"]
    if no_valid_query(row):
        return ("%s: no valid query (none of the %s queries has a matching gallery image "
                "from another camera); no CMC or mAP" % (row["name"], row.get("num_queries", "?")))
    return None


def summary(row):
    """{metric: percent or None} of a result row."""
    if no_valid_query(row):
        return {m: None for m in METRICS}
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


def table(rows):
    """The results table: [(cells, is_paper_row)], each result and under
    it the paper's row for the same table row where there is one."""
    out = []
    for row in rows:
        ours, std = summary(row), _std(row)
        trials = " (mean of %d trials)" % row["trials"] if row.get("trials", 1) > 1 else ""
        if row.get("seeds", 1) > 1:
            trials += " (mean ± std of %d seeds)" % row["seeds"]
        out.append(([row["name"] + trials] + [_cell(ours[m], std.get(m)) for m in METRICS], False))
        paper = row.get("paper")
        if paper:
            out.append((["paper: " + paper_label(paper)]
                        + [_cell(paper["values"].get(m)) for m in METRICS], True))
    return out


def markdown(rows, title, provenance=None):
    """The Markdown table: one line per result, and under it the paper's
    line; the rows' warnings; the provenance footer when given."""
    lines = ["# %s" % title, "", "| result | " + " | ".join(HEADERS) + " |",
             "| --- |" + " ---: |" * len(HEADERS)]
    lines += ["| %s |" % " | ".join(cells) for cells, _ in table(rows)]
    lines += ["", "Values in percent; paper rows as published (– : not reported)."]
    warnings = [w for w in map(warning, rows) if w]
    if warnings:
        lines += [""] + ["Warning: %s" % w for w in warnings]
    text = "\n".join(lines) + "\n"
    return text + prov.footer(provenance) if provenance else text


def plot_cmc(rows, path, title, max_rank=PLOT_RANKS):
    """CMC curves (ranks 1..max_rank) with the paper's points as markers."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for row in rows:
        if no_valid_query(row):
            continue  # nothing was measured
        cmc = 100.0 * np.asarray(row["cmc"], np.float64)[:max_rank]
        ranks = np.arange(1, len(cmc) + 1)
        line, = ax.plot(ranks, cmc, label=row["name"])
        if row.get("cmc_std") is not None:  # ± one standard deviation over trials or seeds
            std = 100.0 * np.asarray(row["cmc_std"], np.float64)[:len(cmc)]
            ax.fill_between(ranks, np.clip(cmc - std, 0, 100), np.clip(cmc + std, 0, 100),
                            color=line.get_color(), alpha=0.2, linewidth=0)
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
    if ax.get_legend_handles_labels()[0]:  # none when no row has a valid query
        ax.legend(loc="lower right", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _jsonable(row):
    out = {"name": row["name"], "summary": summary(row),
           "cmc": [float(v) for v in np.asarray(row["cmc"])[:SAVED_RANKS]]}
    for key in ("mAP", "mAP_std", "trials", "seeds", "per_seed", "paper", "num_queries",
                "num_valid"):
        if row.get(key) is not None:
            out[key] = row[key]
    if warning(row):
        out["warning"] = warning(row)
    if row.get("cmc_std") is not None:
        out["cmc_std"] = [float(v) for v in np.asarray(row["cmc_std"])[:SAVED_RANKS]]
    return out


def _ranked_lists(out_dir, doc, ranked_from):
    """(figures, notes) of the ranked lists: of the evaluation this report
    made (its meta names the evaluated file), or of the reports
    `ranked_from` = [(caption, report folder)]."""
    if ranked_from is None:
        ranked_from = [(doc["title"], None)] if doc["meta"].get("sources") else []
    figures, notes = [], []
    if not ranked_from:
        notes.append("none: this report names no features or score file of its own")
    for i, (caption, folder) in enumerate(ranked_from):
        name = "ranked.png" if folder is None else "ranked_%d.png" % (i + 1)
        try:
            if folder is None:
                ranking = visrank.from_report(doc)
            else:
                with open(os.path.join(folder, RESULTS_JSON)) as f:
                    ranking = visrank.from_report(json.load(f))
            lists = visrank.draw(ranking, os.path.join(out_dir, name), title=caption)
        except (ValueError, OSError) as err:  # the numbers stand without the picture: say why
            notes.append("ranked lists of %s not drawn: %s" % (caption, cli.message(err)))
            continue
        figures.append(("%s: %d queries, each with its top %d (green: true match, red: wrong, "
                        "grey dashed: junk by the dataset's rule, not ranked)%s"
                        % (caption, len(lists), visrank.TOP, _first_of(doc, folder)), name))
    return figures, notes


def _first_of(doc, folder):
    """A caption's note when ranked lists show one trial of several."""
    if folder is not None:
        with open(os.path.join(folder, RESULTS_JSON)) as f:
            doc = json.load(f)
    sources = (doc.get("meta") or {}).get("sources") or []
    return "; the first of %d trials" % len(sources) if len(sources) > 1 else ""


def _stage_sections(out_dir, provenance):
    """A page section per training stage of the run (provenance's
    stage_iterations): its curves (Caffe's parse_log.py) and net diagram
    (caffe.draw), one diagram per distinct net."""
    run_dir = provenance.get("run_dir")
    if not run_dir:
        return []
    sections, drawn = [], {}
    for rel in curves.stage_dirs(run_dir, provenance.get("stage_iterations") or {}):
        stage = os.path.normpath(os.path.join(run_dir, rel))
        slug = os.path.basename(stage) if rel == "." else rel.replace(os.sep, "_")
        section = {"heading": "Training stage %s" % rel, "figures": [], "notes": [], "wide": []}
        try:
            curves.plot_stage(stage, os.path.join(out_dir, "curves_%s.png" % slug), rel)
            section["figures"].append(("%s: losses and learning rate against iteration, from "
                                       "train.log by Caffe's parse_log.py" % rel,
                                       "curves_%s.png" % slug))
        except (ValueError, OSError, RuntimeError) as err:
            section["notes"].append("curves not drawn: %s" % cli.message(err))
        net = os.path.join(stage, "step2" if curves.is_two_stepped(stage) else "", NET)
        key = None
        try:
            # the same net on other LMDBs or seeds is the same picture
            dot, key = diagrams.graph(net)
            if key not in drawn:
                drawn[key] = "net_%s.png" % slug
                diagrams.render(dot, key, os.path.join(out_dir, drawn[key]),
                                os.path.join(run_dir, DIAGRAMS))
            section["figures"].append(("%s: the net (%s), drawn by caffe.draw"
                                       % (rel, os.path.relpath(net, run_dir)), drawn[key]))
            section["wide"].append(drawn[key])
        except (ValueError, OSError, RuntimeError) as err:
            drawn.pop(key, None)
            section["notes"].append("net diagram not drawn: %s" % cli.message(err))
        sections.append(section)
    return sections


def write_index(out_dir, rows, doc, ranked_from=None):
    """out_dir/index.html (evaluation/html_report.py) of a report
    whose results.md and cmc.png are written."""
    ranked, notes = _ranked_lists(out_dir, doc, ranked_from)
    sections = [{"heading": "CMC", "figures": [(doc["title"] + ": CMC curves, the paper's "
                                                "published points as circles, shaded ± one "
                                                "standard deviation where there are several "
                                                "trials or seeds", "cmc.png")]},
                {"heading": "Ranked lists", "figures": ranked, "notes": notes}]
    sections += _stage_sections(out_dir, doc["provenance"])
    return html_report.write_index(out_dir, doc["title"], ("result",) + HEADERS, table(rows),
                                   sections, doc["provenance"],
                                   [w for w in map(warning, rows) if w])


def write_report(out_dir, rows, title, meta=None, provenance=None, ranked_from=None):
    """Write results.json, results.md, cmc.png and index.html (with the
    ranked lists, training curves and net diagrams beside it) into
    `out_dir`; returns their paths. `provenance`: common.provenance.gather()'s
    record of what made the numbers (default: gathered now, from the
    running invocation); its run_dir's training stages are drawn.
    `ranked_from`: [(caption, report folder)] whose ranked lists to draw
    (default: this report's own evaluation, when its meta names one)."""
    if not rows:
        raise ValueError("write_report: no result rows")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError("report folder %s is an existing file; give a folder" % out_dir)
    provenance = prov.gather() if provenance is None else provenance
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, name)
             for name in (RESULTS_JSON, RESULTS_MD, CMC_PNG, PAGE)}
    doc = {"title": title, "meta": meta or {}, "results": [_jsonable(r) for r in rows],
           "provenance": provenance}
    write_text(paths[RESULTS_JSON], json.dumps(doc, indent=1, sort_keys=True) + "\n")
    write_text(paths[RESULTS_MD], markdown(rows, title, provenance))
    plot_cmc(rows, paths["cmc.png"], title)
    write_index(out_dir, rows, doc, ranked_from)
    return paths
