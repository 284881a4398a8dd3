"""Dataset parsers, the canonical split format, merging and LMDB builders.
First stage of the pipeline: imports nothing from layers/ or tools/.

`make_split(dataset, root, out, **protocol)` and `merge_splits(split_files,
out, eval_from=)` (data_prep/prepare.py) are what `python -m data_prep`
runs."""
from data_prep.prepare import make_split, merge_splits

__all__ = ["make_split", "merge_splits"]
