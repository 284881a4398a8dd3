"""Market-1501 multi-query (Zheng et al. 2015; Geng16 Table 2 and 4 "Multi-
query"; docs/evaluation.md): each query is replaced by the pool of its
``gt_bbox`` images of the same person and camera (the query included), whose
features are averaged (default) or max-pooled; the pooled feature is then
evaluated like a single query.

The pools come from the split's trial: ``trial["multi_query"]`` maps a query
image index (JSON key, a string) to the image indices pooled for it
(data_prep/market1501.py ``multi_query_pools``).
"""
import numpy as np

POOLING = ("mean", "max")


def pool_features(features, image_index, pools, query_index, mode="mean"):
    """Pooled features, one row per entry of `query_index`.

    `features`: N × D, row i the feature of split image `image_index[i]`;
    `pools`: {query image index (int or str): [image indices]};
    `query_index`: the query image indices, in the order wanted.
    """
    if mode not in POOLING:
        raise ValueError("pool_features: mode must be one of %s, got %r" % (POOLING, mode))
    features = np.asarray(features)
    row_of = {int(i): r for r, i in enumerate(np.asarray(image_index).reshape(-1))}
    if len(row_of) != len(features):
        raise ValueError("pool_features: %d features for %d distinct image indices"
                         % (len(features), len(row_of)))
    pools = {int(k): v for k, v in pools.items()}
    reduce = np.mean if mode == "mean" else np.max
    out = np.empty((len(query_index), features.shape[1]), np.float32)
    for n, q in enumerate(query_index):
        q = int(q)
        members = pools.get(q, [q])
        missing = [i for i in members if int(i) not in row_of]
        if missing:
            raise ValueError("pool_features: query %d pools image %d, which has no feature "
                             "(extract the 'multi_query' subset)" % (q, missing[0]))
        out[n] = reduce(features[[row_of[int(i)] for i in members]].astype(np.float64), axis=0)
    return out
