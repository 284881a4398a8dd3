"""single_shot: one query and one gallery image per test person of one
trial (steps/stages.py single_shot_split)."""
import os

from common.layout import SPLIT
from data_prep.split_format import load_split, save_split
from steps.stages import single_shot_split

MAIN = SPLIT
USES_CAFFE = False
MEM_MB = 2000


def run(stage, files, out, work, settings):
    os.makedirs(out, exist_ok=True)
    save_split(single_shot_split(load_split(files["split"]), stage.config["trial"],
                                 stage.config["seed"]), os.path.join(out, SPLIT))
