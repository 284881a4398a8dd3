"""The demo's own page (issue 15): the demo's stages (experiments/demo.py)
at a test's size run through the workflow as `make demo` runs them; its
index.html shows the table beside the paper's row, the CMC curves, the
ranked lists of each of its four evaluations, the training curves and net
of every stage that made its models, and the provenance; Chromium renders
it with every image loaded. (`make demo` itself judges the figures; at
this size they are near chance.)"""
import json
import os
from dataclasses import asdict

import pytest

from common import provenance
from experiments import demo, recipes, workflow
from tests.helpers import images_loaded, page_images, screenshot

# 21 iterations: two points of each curve at Caffe's display interval (solver.DISPLAY, 20)
TINY = dict(source={"num_ids": 12, "seed": 1}, target={"num_ids": 24, "seed": 0}, k=2,
            pretrain_iters=(0, 21), finetune_iters=(21, 21), mtdnet_iters=21, mtdnet_batch=2)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("demo"))
    settings = demo.Settings(**TINY)
    graph = recipes.graph({"experiments": ["demo"], "options": {"data_root": store, "seed": 0},
                           "demo": asdict(settings), "run": {"progress": False}})
    with provenance.invocation("tests.test_demo_page", [], asdict(settings), store) as record:
        workflow.execute(store, graph, invocation=record, quiet=True)
    (report,) = graph.experiments["demo"]
    trained = [s for s in report.stages() if s.kind in ("geng16", "mtdnet")]
    return os.path.join(store, report.path), trained


def test_the_demo_page_shows_each_part_of_its_run(page):
    folder, trained = page
    with open(os.path.join(folder, "index.html")) as f:
        text = f.read()
    srcs = page_images(folder)
    assert srcs[0] == "cmc.png"
    assert len([s for s in srcs if s.startswith("ranked")]) == len(demo.CAPTIONS)
    # every training stage of the run, the two-stepped one on one axis
    assert len(trained) == 3
    assert len([s for s in srcs if s.startswith("curves_")]) == 3
    assert len([s for s in srcs if s.startswith("net_")]) == 3
    for stage in trained:
        assert "Training stage %s" % workflow.work_dir(stage) in text
    assert "paper: geng16 Table 8, Market / DGDNet / SID + PV / NO" in text
    for caption in demo.CAPTIONS:
        assert caption in text
    with open(os.path.join(folder, "results.json")) as f:
        doc = json.load(f)
    assert doc["meta"]["settings"]["pretrain_iters"] == [0, 21]
    prov = doc["provenance"]
    assert prov["git"]["commit"] in text and os.path.basename(prov["caffe"]["prefix"]) in text
    assert len(prov["splits"]) == 3 and all(sha1 in text for sha1 in prov["splits"].values())


def test_chromium_renders_the_demo_page_with_every_image(page, tmp_path):
    folder, _ = page
    assert images_loaded(folder) == {"images": len(page_images(folder)), "broken": []}
    pixels = screenshot(os.path.join(folder, "index.html"), str(tmp_path / "shot.png"), "1200,3000")
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01   # tables and figures, not blank
