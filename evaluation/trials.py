"""The mean (and standard deviation) over a dataset's trials
(docs/evaluation.md: CUHK03 over its 20 test splits; VIPeR, PRID, CUHK01,
i-LIDS over 10 random splits). The papers report the mean; the standard
deviation is the sample one (n − 1), 0 for a single trial.
"""
import numpy as np


def aggregate(results):
    """Combine per-trial results ({"cmc": array, "mAP": float or None}).

    CMC curves are cut to the shortest one (galleries may differ in size).
    Returns {"trials", "cmc", "cmc_std", "mAP", "mAP_std"} (mAP entries None
    when any trial has none).
    """
    results = list(results)
    if not results:
        raise ValueError("aggregate: no trial results")
    length = min(len(r["cmc"]) for r in results)
    cmcs = np.stack([np.asarray(r["cmc"], np.float64)[:length] for r in results])
    ddof = 1 if len(results) > 1 else 0
    out = {"trials": len(results), "cmc": cmcs.mean(0), "cmc_std": cmcs.std(0, ddof=ddof),
           "mAP": None, "mAP_std": None}
    maps = [r.get("mAP") for r in results]
    if all(m is not None for m in maps):
        maps = np.asarray(maps, np.float64)
        out["mAP"] = float(maps.mean())
        out["mAP_std"] = float(maps.std(ddof=ddof))
    return out
