"""The names of the files the package writes into its folders, defined
once: every module that writes or reads one imports it from here."""
DECIDES_RESULTS = False   # names only

# a training run directory (training/stage.py)
FINAL = "final.caffemodel"    # the trained weights
STATE = "state.json"          # the iterations done and the last snapshot
LOG = "train.log"             # Caffe's glog output, readable by parse_log.py
# an LMDB folder (data_prep/lmdb_builder.py): labels, pids, cams per entry
INDEX = "index.json"
# a split (data_prep/split_format.py)
SPLIT = "split.json"
# a workflow stage's folder
FEATURES = "features.npz"
SCORES = "scores.npz"
STAGE = "stage.json"          # where a training stage's output was trained
# a report (evaluation/report.py)
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
CMC_PNG = "cmc.png"
PAGE = "index.html"
