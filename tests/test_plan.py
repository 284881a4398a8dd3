"""experiments/plan.py: a stage's folder is named after its
whole configuration, so identical stages across experiments are one stage;
`reproduce --plan` prints the distinct stages and what sharing saves,
reading no data and running nothing."""
import pytest

from experiments import recipes
from experiments.plan import Builder, Stage, summary, training_cost
from networks.solver import scaled
from tools import reproduce


def _graph(keys, **options):
    return recipes.graph({"experiments": keys, "options": dict(data_root="/nonexistent",
                                                               **options)})


def _training(graph, key):
    return {s.id for r in graph.experiments[key] for s in r.stages() if s.kind == "geng16"}


def test_a_stage_is_named_after_its_configuration_and_inputs():
    b = Builder("/data")
    split = b.stage("split", "market1501", name="market1501_std")
    same = Builder("/data").stage("split", "market1501", name="market1501_std")
    assert split.id == same.id and split.id.startswith("market1501_std-")
    assert b.stage("lmdb", split, "train", (256, 256)).id == b.stage("lmdb", same, "train", (256, 256)).id
    # another configuration, another input, another root: another folder
    assert b.stage("lmdb", split, "train", (160, 64)).id != b.stage("lmdb", split, "train", (256, 256)).id
    other = Builder("/elsewhere").stage("split", "market1501", name="market1501_std")
    assert other.id != split.id
    train = b.stage("lmdb", split, "train", (160, 64))
    assert (Builder("/data", scale=0.5).stage("geng16", "m", train, None, two_step=False).id
            != Builder("/data", scale=0.25).stage("geng16", "m", train, None, two_step=False).id)
    with pytest.raises(ValueError, match="unknown stage kind"):
        Stage("train", "x", {})


def test_experiments_that_share_a_training_share_its_stage():
    keys = ["geng16 table2", "geng16 table4 sid_pv", "geng16 table5 sid_pv consistent market",
            "geng16 table8 market googlenet sid_pv imagenet", "geng16 table4 sid"]
    g = _graph(keys)
    market = [_training(g, k) for k in keys]
    assert market[0] == market[1] == market[2] == market[3]   # ImageNet → Market SID + PV
    assert market[4].isdisjoint(market[0])                      # SID alone is other training
    # every small set starts from one ImageNet → CUHK03 + Market stage
    small = _graph(["geng16 table3 viper", "geng16 table6 two-stepped", "geng16 table3 prid"])
    large = [{s for s in ids if s.startswith("large-")} for ids in
             (_training(small, k) for k in small.experiments)]
    assert len(large[0]) == 1 and large[0] == large[1] == large[2]


def test_training_cost_follows_the_schedules():
    g = _graph(["geng16 table2"], scale=0.001)
    (stage,) = [s for s in g.by_id.values() if s.kind == "geng16"]
    iters = scaled(20000, 0.001) + scaled(150000, 0.001)
    assert training_cost(stage) == (iters, iters * 32 * 2)   # §4.1: 32 people x 2 images


def test_plan_counts_shared_stages_once():
    keys = ["geng16 table2", "geng16 table4 sid_pv", "geng16 table4 sid"]
    s = summary(_graph(keys))
    one = summary(_graph(["geng16 table2"]))["shared"]["iterations"]
    assert s["separate"]["iterations"] == 3 * one
    assert s["shared"]["iterations"] == 2 * one
    assert s["shared"]["training stages"] == 2 and s["separate"]["training stages"] == 3


def test_plan_all_shows_the_saving_without_data(capsys):
    assert reproduce.main(["--plan", "all", "--data-root", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    shared = next(l for l in out.splitlines() if l.startswith("Training with stages shared"))
    before = next(l for l in out.splitlines() if l.startswith("One run directory per experiment"))
    ratio = float(next(l for l in out.splitlines() if l.startswith("Sharing trains")).split()[2])

    def iters(line):
        return int(line.split(" stages, ")[1].split(" iterations")[0].replace(",", ""))
    assert iters(shared) < iters(before) and ratio == pytest.approx(iters(before) / iters(shared),
                                                                    abs=0.01)
    assert ratio > 2
    assert "geng16       market1501_t0-" in out and "report       geng16_table2-" in out


def test_several_experiments_and_bad_names(capsys):
    assert reproduce.main(["--plan", "geng16", "table2,", "geng16", "table4", "sid_pv",
                           "--data-root", "/x"]) == 0
    assert capsys.readouterr().out.startswith("2 experiment(s)")
    with pytest.raises(ValueError, match="unknown experiment 'geng16 table4'; did you mean"):
        reproduce.main(["--plan", "geng16", "table2,", "geng16", "table4"])
