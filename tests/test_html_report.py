"""One page per run: a report's index.html, made from a real
run (a two-stepped stage trained by training/stage.py, a features file of a
split of real image files, evaluation.evaluate), rendered by headless Chromium
(Debian's `chromium`, installed by caffe_build/setup.sh): the screenshot is not
blank and every image loads; each image is a file beside the page."""
import json
import os
import shutil

import pytest
from PIL import Image

from common import provenance
from common.version import VERSION
from tests.fixtures_results import make_features, make_split, train_two_stepped
from tests.helpers import images_loaded, page_images, screenshot
from evaluation import evaluate
from evaluation.report import write_report

@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(run dir, evaluate's report folder, a demo-style report of it)."""
    run = tmp_path_factory.mktemp("run")
    split_path, split = make_split(str(run / "data"))
    features = make_features(str(run / "f.t0.features.npz"), split_path, split)
    train_two_stepped(str(run / "geng16_target"))
    with provenance.invocation("tests.test_html_report", [], {"seed": 7}, str(run)):
        sub = evaluate.report(str(run / "eval"), "market", features=[features], title="eval",
                              paper="geng16:table2:Ours")
        with open(sub["results.json"]) as f:
            rows = json.load(f)["results"]
        top = write_report(str(run / "report"), rows, "Demo-like", {},
                           provenance.gather(run_dir=str(run)),
                           ranked_from=[("Geng16", str(run / "eval"))])
    return str(run), os.path.dirname(sub["index.html"]), os.path.dirname(top["index.html"])


@pytest.mark.parametrize("which", [1, 2])
def test_every_image_is_a_file_beside_the_page(report, which):
    folder = report[which]
    srcs = page_images(folder)
    assert srcs[0] == "cmc.png" and ("ranked.png" in srcs or "ranked_1.png" in srcs)
    assert "curves_geng16_target.png" in srcs and "net_geng16_target.png" in srcs
    for src in srcs:
        assert os.path.dirname(src) == "" and "://" not in src   # no network, nothing elsewhere
        with Image.open(os.path.join(folder, src)) as im:
            im.load()                                             # decodes
            assert min(im.size) > 20


def test_page_shows_the_table_beside_the_paper_and_the_provenance(report):
    run, sub, _ = report
    text = open(os.path.join(sub, "index.html")).read()
    assert "<td>single query</td>" in text
    assert "<td>paper: geng16 Table 2, Ours, single query</td><td>83.70</td>" in text
    assert "Training stage geng16_target" in text
    with open(os.path.join(sub, "results.json")) as f:
        prov = json.load(f)["provenance"]
    assert prov["git"]["commit"] and prov["git"]["commit"] in text
    assert "<dt>Package</dt><dd>reid-caffe %s</dd>" % VERSION in text
    assert "seed=7" in text and os.path.basename(prov["caffe"]["prefix"]) in text
    for split, sha1 in prov["splits"].items():
        assert sha1 in text


def test_chromium_renders_the_page_with_every_image_loaded(report, tmp_path):
    _, _, folder = report
    assert images_loaded(folder) == {"images": len(page_images(folder)), "broken": []}
    pixels = screenshot(os.path.join(folder, "index.html"), str(tmp_path / "shot.png"))
    assert pixels.std() > 20                 # text, tables and figures, not a blank page
    assert (pixels < 128).mean() > 0.01      # some ink


def test_chromium_check_sees_a_missing_image(report, tmp_path):
    # the check can fail: a page whose image is gone reports it
    _, _, folder = report
    broken = tmp_path / "page"
    shutil.copytree(folder, broken)
    os.remove(broken / "cmc.png")
    assert images_loaded(str(broken))["broken"] == ["cmc.png"]


def test_ranked_lists_of_several_trials_say_which_they_show(tmp_path):
    split_path, split = make_split(str(tmp_path / "data"))
    files = [make_features(str(tmp_path / ("t%d.npz" % t)), split_path, split, seed=t) for t in (0, 1)]
    paths = evaluate.report(str(tmp_path / "report"), "market", features=files)
    text = open(paths["index.html"]).read()
    assert "each with its top 10" in text and "the first of 2 trials" in text
    assert "ranked.png" in page_images(str(tmp_path / "report"))
