"""The workflow's sharing: training iterations and images of
every experiment of `tools.reproduce --list` at the papers' schedules (scale
1, one trial), with stages shared as experiments/Snakefile runs them,
against one run directory per experiment (each experiment training its own
stages). Counted from the stage graph; nothing is trained."""
from bench.timing import Result
from experiments import recipes
from experiments.plan import summary


def run():
    keys = list(recipes.experiments())
    s = summary(recipes.graph({"experiments": keys, "options": {"data_root": "/nonexistent"}}))
    # ours = what one run directory per experiment costs, reference = shared:
    # the ratio is how many times more the old layout trains
    yield Result("all tables: iterations, one dir per experiment", s["separate"]["iterations"],
                 s["shared"]["iterations"], "iters", "shared")
    yield Result("all tables: images, one dir per experiment", s["separate"]["images"],
                 s["shared"]["images"], "images", "shared")
    yield Result("all tables: training stages, one dir per experiment",
                 s["separate"]["training stages"], s["shared"]["training stages"], "stages", "shared")
