"""The papers' published numbers (Geng16 Tables 1–9, MTDnet Table 1), typed
in once from the paper text as data (paper_results.json), and looked up by
``paper:table:row[:setting]``, e.g.

    geng16:table2:Ours:single_query     Market-1501 single query, R1 and mAP
    geng16:table6:Two-stepped           VIPeR R1/R5/R10/R20
    mtdnet:table1:MTDnet:cuhk03         CUHK03 R1/R5/R10

Columns are ``setting/metric`` (or ``metric`` where a table has one
setting); metrics are r1, r5, r10, r20 and mAP, in percent.
"""
import functools
import json
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paper_results.json")


@functools.lru_cache(maxsize=None)
def load(path=PATH):
    """The whole document (cached)."""
    with open(path) as f:
        return json.load(f)


def _key(text):
    return "".join(text.lower().split())


def _find(options, wanted, what, where):
    for name in options:
        if _key(name) == _key(wanted):
            return name
    raise KeyError("%s: no %s %r; known: %s" % (where, what, wanted, ", ".join(options)))


def settings(table):
    """The settings of a table's columns, in order ("" for a plain metric)."""
    out = []
    for col in table["columns"]:
        setting = col.rpartition("/")[0]
        if setting not in out:
            out.append(setting)
    return out


def lookup(spec, doc=None):
    """The published numbers of one row (and setting) of one table.

    Returns {"spec", "paper", "table", "row", "setting", "caption",
    "values": {metric: percent or None}}; KeyError naming the unknown part.
    """
    doc = doc or load()
    parts = spec.split(":")
    if len(parts) not in (3, 4):
        raise KeyError("paper spec %r: expected paper:table:row[:setting]" % spec)
    paper = _find(doc["papers"], parts[0], "paper", spec)
    tables = doc["papers"][paper]["tables"]
    table = _find(tables, parts[1], "table", spec)
    t = tables[table]
    row = _find(t["rows"], parts[2], "row", spec)
    known = settings(t)
    if len(parts) == 4:
        setting = _find([s for s in known if s], parts[3], "setting", spec)
    elif known == [""]:
        setting = ""
    else:
        raise KeyError("%s: table %s needs a setting; known: %s" % (spec, table, ", ".join(known)))
    values = {}
    for col, value in zip(t["columns"], t["rows"][row]):
        col_setting, _, metric = col.rpartition("/")
        if col_setting == setting:
            values[metric] = value
    return {"spec": spec, "paper": paper, "table": table, "row": row, "setting": setting,
            "caption": t["caption"], "values": values}
