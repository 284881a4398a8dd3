"""One page per run: report/index.html, self-contained (its
images are files beside it, no script, no network), for people who look
before they read:

- the results table, each row beside the paper's;
- the CMC curves, the ranked lists;
- per training stage that made the model: its curves and its net diagram;
- the provenance block (commit, Caffe build, options, seeds, checksums).

evaluation/report.py gathers the parts and calls `write_index`.
"""
import html
import json
import os

from common.atomic import write_text
from common.layout import PAGE
from common.provenance import blas_summary

DECIDES_RESULTS = False   # a report's page (common/code_fingerprint.py)

INDEX = PAGE

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 80em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.paper td { color: #666; font-style: italic; background: #f6f6f6; }
figure { margin: 0.8em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; border: 1px solid #ddd; }
.wide { overflow-x: auto; } .wide img { max-width: none; max-height: 420px; }
.note { color: #8a5a00; } dt { font-weight: bold; margin-top: 0.4em; } dd { margin-left: 1.5em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""


def _e(text):
    return html.escape(str(text))


def _table(headers, rows):
    out = ["<table>", "<tr>" + "".join("<th>%s</th>" % _e(h) for h in headers) + "</tr>"]
    for cells, paper in rows:
        out.append('<tr%s>' % (' class="paper"' if paper else "")
                   + "".join("<td>%s</td>" % _e(c) for c in cells) + "</tr>")
    return "\n".join(out + ["</table>"])


def _figure(caption, src, wide=False):
    # a net diagram is tens of thousands of pixels wide: scrolled, not shrunk
    return ('<figure><div class="%s"><a href="%s"><img src="%s" alt="%s"></a></div>'
            '<figcaption>%s</figcaption></figure>'
            % ("wide" if wide else "", _e(src), _e(src), _e(caption), _e(caption)))


def _section(section):
    out = ["<h2>%s</h2>" % _e(section["heading"])]
    for note in section.get("notes", ()):
        out.append('<p class="note">%s</p>' % _e(note))
    for caption, src in section.get("figures", ()):
        out.append(_figure(caption, src, src in section.get("wide", ())))
    return "\n".join(out)


def _provenance(doc):
    if not doc:
        return ""
    git, caffe = doc.get("git") or {}, doc.get("caffe") or {}
    options = doc.get("options") or {}
    facts = [
        ("Made by", (doc.get("command") or {}).get("rerun")),
        ("Step", ((doc.get("step") or {}).get("command") or {}).get("rerun")),
        ("Package", "%(name)s %(version)s" % doc["package"] if doc.get("package") else None),
        ("Commit", "%s%s" % (git.get("commit"), " (uncommitted changes)" if git.get("dirty") else "")),
        ("Caffe build", "%s; source %s; patches %s" % (
            caffe.get("prefix"), caffe.get("source"),
            ", ".join(str(p) for p in caffe.get("patches") or []) or "none")),
        ("Seeds", ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(options.items())
                            if "seed" in k) or "none given"),
        ("Options", ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(options.items()))),
        ("Data checksums (SHA-1)", ", ".join("%s %s" % (os.path.basename(p), s)
                                             for p, s in (doc.get("splits") or {}).items())),
        ("Data (content fingerprint)", ", ".join(
            "%s %s (%d files)" % (p, d["content"][:16], d["files"])
            for p, d in sorted((doc.get("data") or {}).items()) if d) or "synthetic, made here"),
        ("Trained (iterations)", ", ".join("%s %s" % kv for kv in
                                           sorted((doc.get("stage_iterations") or {}).items()))),
        ("Software", ", ".join("%s %s" % kv for kv in sorted((doc.get("versions") or {}).items()))),
        ("BLAS", blas_summary(doc)),
        ("Machine", "%s, %s cores; GPU: %s" % ((doc.get("cpu") or {}).get("model"),
                                              (doc.get("cpu") or {}).get("cores"),
                                              (doc.get("gpu") or {}).get("name") or "none")),
        ("Wall time", "%s s, finished %s" % (doc.get("wall_time_s"), doc.get("finished"))),
    ]
    items = "".join("<dt>%s</dt><dd>%s</dd>" % (_e(k), _e(v)) for k, v in facts if v)
    return ("<h2>Provenance</h2>\n<dl>%s</dl>\n<details><summary>the whole record "
            "(results.json)</summary><pre>%s</pre></details>"
            % (items, _e(json.dumps(doc, indent=1, sort_keys=True))))


def page(title, headers, rows, sections, provenance=None, notes=()):
    """The page's HTML. `rows`: [(cells, is_paper_row)]; `sections`:
    [{"heading", "figures": [(caption, file beside the page)], "notes",
    "wide": files shown at full height, scrolled}]."""
    body = ["<h1>%s</h1>" % _e(title), "<h2>Results</h2>", _table(headers, rows),
            "<p>Values in percent; grey rows: the paper's, as published (– : not reported).</p>"]
    body += ['<p class="note">%s</p>' % _e(n) for n in notes]
    body += [_section(s) for s in sections] + [_provenance(provenance)]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>%s</title>'
            "<style>%s</style></head>\n<body>\n%s\n</body></html>\n"
            % (_e(title), STYLE, "\n".join(body)))


def write_index(out_dir, title, headers, rows, sections, provenance=None, notes=()):
    """Write out_dir/index.html; every figure must be a file in out_dir."""
    for section in sections:
        for _, src in section.get("figures", ()):
            if not os.path.isfile(os.path.join(out_dir, src)):
                raise FileNotFoundError("index.html: figure %s is not in %s" % (src, out_dir))
    path = os.path.join(out_dir, INDEX)
    write_text(path, page(title, headers, rows, sections, provenance, notes))
    return path
