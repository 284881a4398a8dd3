"""Data-layer throughput: Geng16's identity-sampled layer (ours, Python,
layers/identity_sampled_data.py) against Caffe's own C++ Data layer with
crop_size, mirror and mean_value in transform_param, both reading the same
LMDB of synthetic 256×256 images and delivering 64 × 3 × 224 × 224 batches
in TRAIN. The target: ours at least as fast as Caffe's own."""
import json
import os
import tempfile
import time

from common import caffe_env
import caffe
from caffe import layers as L, params as P
from bench.timing import Result
from common.config import GENG16_CROP, MEAN_BGR
from data_prep import market1501, synthetic
from data_prep.lmdb_builder import build_lmdb

SIZE = 256          # stored size; the nets crop GENG16_CROP (224)
NUM_IDS = 80        # 40 training identities, about 400 images
BATCHES = 40        # timed forwards per layer, after the prefetch queue is full


def _nets(source):
    batch = 32 * 2  # Geng16 §5.2's K × M
    c = caffe.NetSpec()
    c.data, c.label = L.Data(source=source, backend=P.Data.LMDB, batch_size=batch, ntop=2,
                             transform_param=dict(crop_size=GENG16_CROP, mirror=True,
                                                  mean_value=list(MEAN_BGR)))
    p = caffe.NetSpec()
    p.data, p.label = L.Python(ntop=2, python_param=dict(
        module="layers.identity_sampled_data", layer="IdentitySampledData",
        param_str=json.dumps({"source": source, "k": 32, "m": 2, "crop": GENG16_CROP})))
    return {"ours": caffe_env.net_from_spec(p, caffe.TRAIN),
            "cpp": caffe_env.net_from_spec(c, caffe.TRAIN)}, batch


def _images_per_second(net, batch):
    for _ in range(6):      # warm up and let the prefetcher fill its queue
        net.forward()
    time.sleep(1.0)
    start = time.perf_counter()
    for _ in range(BATCHES):
        net.forward()
    return BATCHES * batch / (time.perf_counter() - start)


def run():
    with tempfile.TemporaryDirectory(prefix="bench_data_layer-") as tmp:
        tree = synthetic.generate(os.path.join(tmp, "tree"), num_ids=NUM_IDS, seed=0, quiet=True)
        source = build_lmdb(market1501.parse(tree), os.path.join(tmp, "train.lmdb"), SIZE, SIZE,
                            verbose=False)
        nets, batch = _nets(source)
        rate = {name: _images_per_second(net, batch) for name, net in nets.items()}
        nets["ours"].layers[0].close()
    return [Result("identity-sampled data 64x3x224x224 (img/s)", rate["ours"], rate["cpp"], "img/s",
                   "C++ Data layer", target=">= 1.0")]
