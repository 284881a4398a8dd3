"""tools.reproduce, experiments/recipes.py (issue 7): every table row of the papers that is one
of their own models has an experiment whose paper numbers resolve; one
experiment runs end to end on a small synthetic Market-layout set (data
preparation → training → extraction → report beside the paper) and a rerun
does nothing again."""
import json
import os

import pytest

from common import cli
from common.records import sha1
from experiments import recipes
from tools import reproduce
from evaluation import papers

# The papers' own rows (the others are compared methods).
OWN_ROWS = {("geng16", "table1"): ["Ours"], ("geng16", "table2"): ["Ours"],
            ("geng16", "table3"): ["Ours"], ("geng16", "table4"): None,
            ("geng16", "table5"): None, ("geng16", "table6"): None, ("geng16", "table7"): ["Ours"],
            ("geng16", "table8"): None, ("geng16", "table9"): None,
            ("mtdnet", "table1"): ["MTDnet-rnk", "MTDnet-cls", "MTDnet-trp", "MTDnet",
                                   "MTDnet-aug", "MTDnet-cross"]}


def test_every_own_table_row_has_an_experiment():
    known = recipes.experiments()
    covered = set()
    for e in known.values():
        for spec in e.papers:
            paper, table = spec.split(":")[:2]
            t = papers.load()["papers"][paper]["tables"][table]
            # a row without a setting covers every setting of its table (Market's two queries)
            for setting in ([None] if len(spec.split(":")) == 4 else papers.settings(t)):
                info = papers.lookup(spec + (":" + setting if setting else ""))
                covered.add((info["paper"], info["table"], info["row"], info["setting"]))
    doc = papers.load()["papers"]
    for (paper, table), rows in OWN_ROWS.items():
        t = doc[paper]["tables"][table]
        for row in rows or list(t["rows"]):
            for setting in papers.settings(t):
                if paper == "mtdnet" and row in ("MTDnet-aug", "MTDnet-cross") and setting == "cuhk03":
                    continue  # CUHK03 is the source of the transfer rows
                assert (paper, table, row, setting) in covered, (paper, table, row, setting)


def test_list_shows_paper_numbers(capsys):
    assert reproduce.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "geng16 table6 two-stepped" in out and "r1 56.3  r5 83.3  r10 90.5  r20 96.0" in out
    assert "mtdnet viper cross" in out


def test_unknown_experiment_is_one_line(capsys):
    assert cli.run(reproduce.main, ["geng16", "table8", "market"]) == cli.BAD_INPUT
    assert capsys.readouterr().err.startswith(
        "error: unknown experiment 'geng16 table8 market'; did you mean")


def test_experiment_runs_end_to_end_and_resumes(tmp_path, capsys):
    from data_prep import synthetic
    synthetic.generate(str(tmp_path / "data" / "market1501"), num_ids=12, seed=4, quiet=True)
    argv = ["geng16", "table8", "market", "dgdnet", "sid_pv", "scratch", "--data-root",
            str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"), "--scale", "0.00004",
            "--k", "2", "--augment", "0"]
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert "paper: geng16 Table 8, Market / DGDNet / SID + PV / NO | 82.70" in out
    page = tmp_path / "run" / "report" / "index.html"   # its page printed last (issue 15 §3)
    assert out.strip().splitlines()[-1] == "Page: %s" % page and page.is_file()
    assert "Training stage market1501_t0/step2" in page.read_text()
    with open(tmp_path / "run" / "report" / "results.json") as f:
        rows = json.load(f)["results"]
    assert [r["name"] for r in rows] == ["single query", "multi query"]
    assert all(0 <= r["cmc"][0] <= 1 for r in rows)
    final = tmp_path / "run" / "market1501_t0" / "step2" / "final.caffemodel"
    with open(tmp_path / "run" / "market1501_t0" / "step2" / "state.json") as f:
        assert json.load(f)["iter"] == 6  # 150K × 0.00004
    # The report says what made it: this command, its options, the split's
    # checksum, the iterations each stage trained (issue 12 §6).
    with open(tmp_path / "run" / "report" / "results.json") as f:
        prov = json.load(f)["provenance"]
    assert prov["command"]["module"] == "tools.reproduce" and prov["command"]["argv"] == argv
    assert prov["options"]["scale"] == 0.00004 and prov["options"]["k"] == 2
    assert prov["options"]["experiment"] == "geng16 table8 market dgdnet sid_pv scratch"
    assert prov["step"]["command"]["module"] == "tools.evaluate"
    split = str(tmp_path / "run" / "data" / "market1501_std.json")
    assert prov["splits"][split] == sha1(split)
    assert prov["stage_iterations"]["market1501_t0/step2"] == 6
    assert "Made by: `cd " in open(tmp_path / "run" / "report" / "results.md").read()
    stamp = os.stat(final).st_mtime_ns
    assert reproduce.main(argv) == 0  # everything is done: nothing reruns
    assert os.stat(final).st_mtime_ns == stamp
    assert "82.70" in capsys.readouterr().out
    other = ["geng16", "table8", "market", "dgdnet", "sid", "scratch"] + argv[6:]
    with pytest.raises(ValueError, match="holds experiment 'geng16 table8 market dgdnet sid_pv "
                                         "scratch', not 'geng16 table8 market dgdnet sid scratch'"):
        reproduce.main(other)
    # Other settings in the same run directory: refused, naming the field,
    # never reused; remade only when asked (issue 12 §4).
    longer = [a if a != "0.00004" else "0.00008" for a in argv]
    with pytest.raises(ValueError, match="step2 was made with solver line .* rerun with --recompute"):
        reproduce.main(longer)
    assert os.stat(final).st_mtime_ns == stamp
    assert reproduce.main(longer + ["--recompute"]) == 0
    with open(tmp_path / "run" / "market1501_t0" / "step2" / "state.json") as f:
        assert json.load(f)["iter"] == 12
    with open(tmp_path / "run" / "report" / "results.json") as f:
        assert json.load(f)["provenance"]["stage_iterations"]["market1501_t0/step2"] == 12
