"""tools.reproduce, experiments/recipes.py: every table row of the
papers that is one of their own models has an experiment whose paper
numbers resolve. The experiments running end to end through the workflow:
tests/test_workflow.py."""
from common import cli
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
