"""`python -m tools.demo --unsupervised`, the demo command for Geng16's
unsupervised transfer, end to end at a small size (--settings): every
model of Table 9 trains and is evaluated on the synthetic target, through
the workflow, with the demo's K kept (the study once took the builder's
K, the layer's default 32, and stopped after its self-training rounds)."""
import json
import os
import subprocess
import sys

from common.config import ROOT
from common.layout import RESULTS_JSON
from unsupervised import study

# Sizes at which the subspace model still has features of enough
# dimensions (its dictionary's atoms): a source model of 150 iterations on
# 30 training identities, a target of 60 test identities.
SMALL = {"source": {"num_ids": 60, "seed": 1}, "target": {"num_ids": 120, "seed": 0}, "k": 4,
         "pretrain_iters": [0, 150], "finetune_iters": [21, 21]}


def test_the_unsupervised_demo_completes(tmp_path):
    settings = tmp_path / "small.json"
    settings.write_text(json.dumps(SMALL))
    store = tmp_path / "runs"
    argv = [sys.executable, "-m", "tools.demo", "--unsupervised", "--settings", str(settings),
            "--seeds", "0", "--run-dir", str(store), "--no-progress"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    # jobs side by side: their bars went to their logs, none to the terminal
    assert "\r" not in done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("Page: %s" % store) and lines[-1].endswith("index.html")
    report = os.path.dirname(lines[-1][len("Page: "):])
    with open(os.path.join(report, RESULTS_JSON)) as f:
        doc = json.load(f)
    names = [r["name"] for r in doc["results"]]
    assert [n.split(",")[0] for n in names] == [study.NAMES[row] for row in study.ROWS]
    assert all(0 <= r["cmc"][0] <= 1 for r in doc["results"])
    # the settings given are the stage's: K = 4, not the layer's default
    (stage,) = [s for s in os.listdir(store / "unsupervised")]
    with open(store / ".workflow" / "stages" / "unsupervised" / (stage + ".json")) as f:
        assert json.load(f)["config"]["k"] == 4
