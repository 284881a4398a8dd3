"""The teaching notebooks: each jupytext source in
docs/notebooks/ runs top to bottom with nbclient on the CPU and shows what
it teaches; the committed .ipynb is that source, executed (python -m
tools.notebooks regenerates it)."""
import os

import jupytext   # requirements.txt (make setup)
import nbformat
import pytest

from tools import notebooks

NAMES = ("geng16_step_by_step", "mtdnet_cir_test")
# What each must show (printed by its own asserting cells).
SHOWS = {"geng16_step_by_step": ["all pairs: 2016 = 32 positive + 1984 negative",
                                 "after balancing: 3968 pairs",
                                 "consistent: the two sides agree on 100 % of the units",
                                 "aux2/pv_loss", "changed after 5 iterations: ['cls_main_6']"],
         "mtdnet_cir_test": ["labels [1. 0.]", "concat (2, 512, 3, 3)", "iteration 30:",
                             "CIR: first true match at rank", "-trp: first true match at rank"]}


def _text(nb):
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
    return "".join(out)


def _images(nb):
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_every_source_is_listed():
    assert [os.path.basename(p) for p in notebooks.sources()] == [n + ".py" for n in NAMES]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_shows_its_lesson(name):
    nb = notebooks.execute(os.path.join(notebooks.FOLDER, name + ".py"))
    text = _text(nb)
    for expected in SHOWS[name]:
        assert expected in text, (name, expected)
    assert _images(nb) >= 1   # the masks / the concatenated maps and ranked lists, drawn


@pytest.mark.parametrize("name", NAMES)
def test_committed_ipynb_is_the_source_executed(name):
    source = jupytext.read(os.path.join(notebooks.FOLDER, name + ".py"))
    committed = nbformat.read(os.path.join(notebooks.FOLDER, name + ".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == \
        [(c.cell_type, c.source) for c in source.cells], "rerun: python -m tools.notebooks"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    for expected in SHOWS[name]:
        assert expected in _text(committed)


def test_a_failing_cell_is_named(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("# %%\nx = 1\n\n# %%\nraise ValueError('the lesson broke')\n")
    with pytest.raises(RuntimeError, match="bad.py: cell 1 failed: ValueError: the lesson broke"):
        notebooks.execute(str(bad))
