"""The demo's own page: the demo's stages (experiments/demo.py)
at a test's size run through the workflow as `make demo` runs them; its
index.html shows the table beside the paper's row, the CMC curves, the
ranked lists of each of its four evaluations, the training curves and net
of every stage that made its models, and the provenance; Chromium renders
it with every image loaded. (`make demo` itself judges the figures; at
this size they are near chance.)"""
import json
import os
from dataclasses import asdict

import numpy as np
import pytest

from common import provenance
from common.version import VERSION
from experiments import demo, recipes, store as stores, workflow
from tests.helpers import images_loaded, page_images, screenshot

# 21 iterations: two points of each curve at Caffe's display interval (solver.DISPLAY, 20)
TINY = dict(source={"num_ids": 12, "seed": 1}, target={"num_ids": 24, "seed": 0}, k=2,
            pretrain_iters=(0, 21), finetune_iters=(21, 21), mtdnet_iters=21, mtdnet_batch=2,
            seeds=(0, 1))
# two jobs at once, each on one BLAS thread with the pinned kernels
RUN = {"progress": False, "blas_threads": 1, "cpu_kernels": "haswell"}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("demo"))
    settings = demo.Settings(**TINY)
    graph = recipes.graph({"experiments": ["demo"], "options": {"data_root": store, "seed": 0},
                           "demo": asdict(settings), "run": RUN})
    with provenance.invocation("tests.test_demo_page", [], asdict(settings), store) as record:
        workflow.execute(store, graph, invocation=record, cores=2)
    (report,) = graph.experiments["demo"]
    trained = [s for s in report.stages() if s.kind in ("geng16", "mtdnet")]
    return os.path.join(store, report.path), trained, report


def test_the_demo_page_shows_each_part_of_its_run(page):
    folder, trained, report = page
    with open(os.path.join(folder, "index.html")) as f:
        text = f.read()
    srcs = page_images(folder)
    assert srcs[0] == "cmc.png"
    assert len([s for s in srcs if s.startswith("ranked")]) == len(demo.CAPTIONS)
    # every training stage of the run (the source model, per seed two), the
    # two-stepped one on one axis; a net drawn once however many seeds trained it
    assert len(trained) == 5
    assert len([s for s in srcs if s.startswith("curves_")]) == 5
    assert len({s for s in srcs if s.startswith("net_")}) == 3
    assert len([s for s in srcs if s.startswith("net_")]) == 5
    for stage in trained:
        assert "Training stage %s" % stores.work_dir(stage) in text
    assert "paper: geng16 Table 8, Market / DGDNet / SID + PV / NO" in text
    for caption in demo.CAPTIONS:
        assert "%s, seed 0" % caption in text   # the first seed's ranked lists
    with open(os.path.join(folder, "results.json")) as f:
        doc = json.load(f)
    assert doc["meta"]["settings"]["pretrain_iters"] == [0, 21] and doc["meta"]["seeds"] == [0, 1]
    # each row is the mean ± std of the seeds' own reports; the source model,
    # which they share, counts once
    for i, caption in enumerate(demo.CAPTIONS):
        row = next(r for r in doc["results"] if r["name"].startswith(caption + ","))
        paths = dict.fromkeys(report.inputs["seed%d_%d" % (seed, i)].path for seed in (0, 1))
        assert len(paths) == (1 if i == 0 else 2)
        runs = []
        for path in paths:
            with open(os.path.join(folder, "..", "..", path, "results.json")) as f:
                runs.append(json.load(f)["results"][0])
        assert [p["rank1"] for p in row["per_seed"]] == [r["cmc"][0] for r in runs]
        if i == 0:
            assert "cmc_std" not in row
            continue
        assert row["cmc"][0] == pytest.approx(np.mean([r["cmc"][0] for r in runs]))
        assert row["cmc_std"][0] == pytest.approx(np.std([r["cmc"][0] for r in runs], ddof=1))
    assert "(mean ± std of 2 seeds)" in text
    prov = doc["provenance"]
    assert prov["git"]["commit"] in text and os.path.basename(prov["caffe"]["prefix"]) in text
    assert prov["package"]["version"] == VERSION and "reid-caffe %s" % VERSION in text
    assert len(prov["splits"]) == 3 and all(sha1 in text for sha1 in prov["splits"].values())
    # the job ran in the pinned arithmetic, and its NumPy's OpenBLAS took it
    assert prov["arithmetic"] == {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell",
                                  "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
    assert prov["blas"]["numpy"]["corename"] == "Haswell"
    assert "OPENBLAS_CORETYPE=Haswell" in text


def test_chromium_renders_the_demo_page_with_every_image(page, tmp_path):
    folder = page[0]
    assert images_loaded(folder) == {"images": len(page_images(folder)), "broken": []}
    pixels = screenshot(os.path.join(folder, "index.html"), str(tmp_path / "shot.png"), "1200,3000")
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01   # tables and figures, not blank
