"""Ranked lists: for a few queries, the query image and its
top-10 gallery images, each framed green for a true match and red for a
wrong one, the picture torchreid users know as `visrank`.

The ranking is the evaluation's: gallery sorted by distance (scores: the
highest first), ties by gallery order, and the dataset's own rule says which
images are junk (Market: id −1 and the query's person from its own camera;
single-shot: every image from the query's camera; market.marks, cmc.marks).
Junk is not ranked: it is shown where it fell, framed grey and marked
"junk", and the ranks count the other images, as the CMC does.

The images come from what the evaluation read: a features file
(evaluation/features.py) names its split, whose images its query/gallery
indices point at; a score matrix (evaluation/cir.py) names the query and
gallery LMDBs, whose images are the ones that were scored.
"""
import json
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.atomic import atomic_path
from common.layout import RESULTS_JSON
from data_prep.lmdb_builder import LmdbImages
from data_prep.split_format import load_split
from evaluation import cmc, market
from evaluation.distance import euclidean
from evaluation.features import load_features
from evaluation.score_matrix import load_matrix

DECIDES_RESULTS = False   # a report's ranked-list pictures (common/code_fingerprint.py)

QUERIES = 8
TOP = 10
CELL = (64, 128)          # an image's size in the picture (Market's crops are 64 x 128)
FRAME, DASH, GAP, FONT = 4, 6, 6, 11   # pixels
RULES = {"market": market.marks, "single-shot": cmc.marks}
COLOURS = {"query": "#2b5fad", "good": "#1a9641", "wrong": "#d7191c", "junk": "#9a9a9a"}


@dataclass
class Ranking:
    """What a ranked list is drawn from: a queries × gallery matrix, the
    ids and cameras, the protocol whose rule marks junk, and a loader of
    images (`images(side, indices)` → RGB uint8 arrays)."""
    matrix: np.ndarray
    q_pids: np.ndarray
    q_cams: np.ndarray
    g_pids: np.ndarray
    g_cams: np.ndarray
    protocol: str
    images: object
    similarity: bool = False


def ranked_entries(row, junk, good, top=TOP, similarity=False):
    """[(gallery index, "good" | "wrong" | "junk", rank or None)] of one
    query, in ranking order, until `top` ranked (non-junk) images."""
    order = np.argsort(-row if similarity else row, kind="stable")
    out, rank = [], 0
    for g in order:
        if junk[g]:
            out.append((int(g), "junk", None))
            continue
        rank += 1
        out.append((int(g), "good" if good[g] else "wrong", rank))
        if rank == top:
            break
    return out


def pick_queries(good, n=QUERIES):
    """`n` queries that have a true match, spread evenly over the query
    list (the same ones on every run)."""
    valid = np.flatnonzero(good.any(axis=1))
    if len(valid) == 0:
        raise ValueError("no query has a true match in the gallery: no ranked list to draw")
    picks = np.linspace(0, len(valid) - 1, min(n, len(valid))).round().astype(int)
    return valid[np.unique(picks)]


def _frame(canvas, box, colour, dashed=False):
    """A FRAME-pixel frame around `box` (left, top, right, bottom), dashed
    for junk."""
    pen = ImageDraw.Draw(canvas)
    left, top, right, bottom = box
    for i in range(FRAME):
        edges = [((left - 1 - i, top - 1 - i), (right + i, top - 1 - i)),
                 ((left - 1 - i, bottom + i), (right + i, bottom + i)),
                 ((left - 1 - i, top - 1 - i), (left - 1 - i, bottom + i)),
                 ((right + i, top - 1 - i), (right + i, bottom + i))]
        for (x0, y0), (x1, y1) in edges:
            if not dashed:
                pen.line([(x0, y0), (x1, y1)], fill=colour)
                continue
            length = max(x1 - x0, y1 - y0)
            for a in range(0, length + 1, 2 * DASH):
                b = min(a + DASH - 1, length)
                if x0 == x1:
                    pen.line([(x0, y0 + a), (x0, y0 + b)], fill=colour)
                else:
                    pen.line([(x0 + a, y0), (x0 + b, y0)], fill=colour)


def draw(ranking, out_png, n=QUERIES, top=TOP, title=None):
    """Write the ranked lists of `n` queries to `out_png`; returns the
    queries drawn and their entries [(query index, ranked_entries)]. Each
    image is shown at CELL pixels, its two-line label above it; composed
    with PIL (a grid of matplotlib axes took seconds per picture)."""
    rule = RULES.get(ranking.protocol)
    if rule is None:
        raise ValueError("ranked lists: unknown protocol %r; known: %s"
                         % (ranking.protocol, ", ".join(RULES)))
    matrix = np.asarray(ranking.matrix, np.float64)
    junk, good = rule(ranking.q_pids, ranking.q_cams, ranking.g_pids, ranking.g_cams)
    queries = pick_queries(good, n)
    lists = [(int(q), ranked_entries(matrix[q], junk[q], good[q], top, ranking.similarity))
             for q in queries]
    cols = 1 + max(len(entries) for _, entries in lists)
    q_imgs = ranking.images("query", [q for q, _ in lists])
    g_imgs = {g: img for g, img in zip(*_unique_gallery(ranking, lists))}
    font = ImageFont.load_default(size=FONT)
    (width, height), label = CELL, 2 * FONT + 6
    step_x, step_y = width + 2 * FRAME + GAP, label + height + 2 * FRAME + GAP
    head = FONT + 3 * GAP if title else GAP
    canvas = Image.new("RGB", (GAP + cols * step_x, head + len(lists) * step_y), "white")
    pen = ImageDraw.Draw(canvas)
    if title:
        pen.text((canvas.width // 2, GAP), title, fill="black", font=font, anchor="ma")

    def cell(r, c, img, kind, text):
        x, y = GAP + c * step_x + FRAME, head + r * step_y + label + FRAME
        canvas.paste(Image.fromarray(np.asarray(img, np.uint8)).resize(CELL, Image.BILINEAR),
                     (x, y))
        colour = COLOURS[kind]
        _frame(canvas, (x, y, x + width, y + height), colour, dashed=kind == "junk")
        pen.multiline_text((x + width // 2, y - FRAME - 2), text, font=font, anchor="md",
                           align="center", spacing=2, fill=colour if kind != "wrong" else "black")

    for r, (q, entries) in enumerate(lists):
        cell(r, 0, q_imgs[r], "query",
             "query\nid %d, cam %d" % (ranking.q_pids[q], ranking.q_cams[q]))
        for c, (g, kind, rank) in enumerate(entries, 1):
            cell(r, c, g_imgs[g], kind, "%s\nid %d, cam %d" % (
                "junk" if kind == "junk" else "#%d" % rank, ranking.g_pids[g], ranking.g_cams[g]))
    with atomic_path(out_png) as tmp:
        canvas.save(tmp, format="PNG")
    return lists


def _unique_gallery(ranking, lists):
    shown = sorted({g for _, entries in lists for g, _, _ in entries})
    return shown, ranking.images("gallery", shown)


def _rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def from_features(path, protocol):
    """The Ranking of a features file: Euclidean distances (Geng16 SIR),
    images from the split the file was extracted from."""
    subsets, meta = load_features(path)
    if "split" not in meta:
        raise ValueError("%s names no split (meta 'split'), so its images are unknown" % path)
    split = load_split(meta["split"])
    q, g = subsets["query"], subsets["gallery"]

    def images(side, indices):
        index = (q if side == "query" else g)["index"]
        return [_rgb(os.path.join(split["root"], split["images"][int(index[i])]["path"]))
                for i in indices]
    return Ranking(euclidean(q["features"], g["features"]), q["pids"], q["cams"], g["pids"],
                   g["cams"], protocol, images)


def from_scores(path, key, protocol, similarity):
    """The Ranking of a score matrix (evaluation/cir.py, tools.mtdnet_cir --out): images from
    the query and gallery LMDBs it names (q_lmdb, g_lmdb)."""
    matrix, q_pids, q_cams, g_pids, g_cams = load_matrix(path, key)
    with np.load(path, allow_pickle=False) as z:
        if "q_lmdb" not in z.files or "g_lmdb" not in z.files:
            raise ValueError("%s names no query/gallery LMDB (q_lmdb, g_lmdb: score files "
                             "from older versions of tools.mtdnet_cir lack them), "
                             "so its images are unknown" % path)
        lmdbs = {"query": str(z["q_lmdb"]), "gallery": str(z["g_lmdb"])}

    def images(side, indices):
        with LmdbImages(lmdbs[side]) as db:
            bgr = db.get_many(indices)
        return list(np.ascontiguousarray(bgr[:, ::-1].transpose(0, 2, 3, 1)))
    return Ranking(matrix, q_pids, q_cams, g_pids, g_cams, protocol, images, similarity)


def from_report(doc):
    """The Ranking of a report made by tools.evaluate (its results.json
    document): the first features file (the first trial) or the matrix,
    with the options the evaluation was run with."""
    meta, prov = doc.get("meta") or {}, doc.get("provenance") or {}
    options = (prov.get("step") or prov).get("options") or {}
    sources, protocol = meta.get("sources"), meta.get("protocol")
    if not sources or not protocol:
        raise ValueError("the report names no evaluated file (meta 'sources', 'protocol')")
    if options.get("matrix"):
        return from_scores(sources[0], options.get("key", "scores"), protocol,
                           bool(options.get("similarity")))
    return from_features(sources[0], protocol)


def draw_report(report_dir, out_png, n=QUERIES, top=TOP, title=None):
    """Ranked lists of the report in `report_dir` (its results.json)."""
    with open(os.path.join(report_dir, RESULTS_JSON)) as f:
        doc = json.load(f)
    return draw(from_report(doc), out_png, n, top, title or doc.get("title"))
