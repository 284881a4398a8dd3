"""lmdb: one subset of one trial of a split as an LMDB of images resized
to the stage's size (data_prep.lmdb_builder), augmented copies included."""
from data_prep.lmdb_builder import build_lmdb
from data_prep.split_format import load_split
from experiments.plan import Stage

MAIN = None
USES_CAFFE = False
MEM_MB = 4000


def plan(b, split, subset, size, trial=0, augment=0):
    return Stage("lmdb", "%s_t%d_%s" % (split.label, trial, subset),
                 {"subset": subset, "size": size, "trial": trial, "augment": augment},
                 {"split": split})


def run(stage, files, out, work, settings):
    c = stage.config
    build_lmdb(load_split(files["split"]), out, c["size"][0], c["size"][1], trial=c["trial"],
               subset=c["subset"], augment=c["augment"], seed=c["trial"], split_path=files["split"],
               verbose=settings.get("progress", True))
