"""Values shared across the pipeline, defined once. Read them from here;
never re-type them elsewhere."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# BVLC ImageNet mean, BGR order (bvlc_googlenet / bvlc_reference_caffenet
# train_val.prototxt mean_value in the Caffe tree).
MEAN_BGR = (104.0, 117.0, 123.0)

# Network input sizes.
GENG16_CROP = 224           # GoogLeNet crop (Geng16 §5.2; bvlc_googlenet's crop_size)
MTDNET_INPUT = 227          # authors' code stretches crops to 227 (docs/reproducing.md)
MTDNET_INPUT_PAPER = 224    # the paper's stated size (option)

# Seed for the random splits and trials of the datasets evaluated over 10
# random splits, so that every run of the package draws the same ones.
SPLIT_SEED = 0
NUM_TRIALS = 10             # VIPeR, PRID, CUHK01, i-LIDS (docs/evaluation.md)

# Where datasets, generated data and runs live unless a command is told.
DATA_ROOT = os.environ.get("REID_DATA", os.path.join(ROOT, "data"))
RUNS_ROOT = os.environ.get("REID_RUNS", os.path.join(ROOT, "runs"))
WEIGHTS_ROOT = os.environ.get("REID_WEIGHTS", os.path.join(ROOT, "weights"))
