"""single_shot: one query and one gallery image per test person of one
trial (steps/stages.py single_shot_split)."""
import os

from common.layout import SPLIT
from data_prep.split_format import load_split, save_split
from steps.stages import single_shot_split
from experiments.plan import Stage

MAIN = SPLIT
USES_CAFFE = False
MEM_MB = 2000


def plan(b, split, name, trial=0, seed=0):
    return Stage("single_shot", name, {"trial": trial, "seed": seed}, {"split": split})


def run(stage, files, out, work, settings):
    os.makedirs(out, exist_ok=True)
    save_split(single_shot_split(load_split(files["split"]), stage.config["trial"],
                                 stage.config["seed"]), os.path.join(out, SPLIT))
