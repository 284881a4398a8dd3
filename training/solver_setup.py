"""What one training stage trains, checked before Caffe sees it: the
solver actually run (absolute net paths, our own snapshots, the seed), the
LMDBs its data layers read and their labels against each softmax
classifier, and the record of what makes its weights (the net and solver,
the data's and initial weights' SHA-1, the processes, the code)."""
import json
import os

from google.protobuf import text_format

from common import caffe_env, code_fingerprint, records
from common.atomic import write_text
from common.layout import INDEX
from data_prep.lmdb_builder import read_index
from training import multi_gpu
from caffe.proto import caffe_pb2

# The module that runs a stage: its code and all it imports (the loop, the
# run directory, surgery) decide a stage's weights beside the Python layers
# its net names.
TRAINER = "training.stage"


def read_solver(path):
    """SolverParameter of a prototxt file, with a clear error when unreadable."""
    return caffe_env.read_prototxt(path, caffe_pb2.SolverParameter(), "solver file")


def stage_solver(solver_path, run_dir, seed=None):
    """The solver actually run: the given one with absolute net paths, our own
    snapshot control (Caffe's interval snapshots off), the prefix in run_dir."""
    param = read_solver(solver_path)
    base = os.path.dirname(os.path.abspath(solver_path))
    for field in ("net", "train_net"):
        if param.HasField(field):
            value = getattr(param, field)
            setattr(param, field, value if os.path.isabs(value) else os.path.join(base, value))
    param.test_net[:] = [t if os.path.isabs(t) else os.path.join(base, t) for t in param.test_net]
    if param.max_iter < 1:
        raise ValueError("solver %s: max_iter %d: must be >= 1 (a stage of no iterations would "
                         "save untrained weights)" % (solver_path, param.max_iter))
    param.snapshot = 0
    param.snapshot_after_train = False
    param.snapshot_prefix = os.path.join(os.path.abspath(run_dir), "snap")
    if seed is not None:
        param.random_seed = seed
    return param


def write_staged(run_dir, param):
    path = os.path.join(run_dir, "solver.prototxt")
    write_text(path, text_format.MessageToString(param))
    return path


# --- what the net reads -------------------------------------------------------

# Python data layers whose param_str names LMDBs: {(module, layer): {key: top
# holding the LMDB's labels, or None}}.
DATA_LAYERS = {("layers.identity_sampled_data", "IdentitySampledData"): {"source": 1},
               ("layers.triplet_data", "TripletData"): {"source": None},
               ("layers.triplet_data", "CrossDomainData"): {"source": None, "aux_source": None}}


def sources(layer):
    """[(param key, LMDB path, label top or None)] of a data layer."""
    if layer.type == "Data" and layer.data_param.source:
        return [("source", layer.data_param.source, layer.top[1] if len(layer.top) > 1 else None)]
    if layer.type != "Python":
        return []
    keys = DATA_LAYERS.get((layer.python_param.module, layer.python_param.layer))
    if not keys:
        return []
    try:
        opts = json.loads(layer.python_param.param_str or "{}")
    except ValueError:
        return []  # the layer's own setup names what is wrong with it
    out = []
    for key, top in keys.items():
        if isinstance(opts, dict) and isinstance(opts.get(key), str):
            out.append((key, opts[key], layer.top[top] if top is not None and len(layer.top) > top
                        else None))
    return out


def index_of(path):
    """The reid-lmdb index of a data source, or None for an LMDB without one
    (Caffe's own Data layer over a foreign LMDB)."""
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, INDEX)):
        return None
    return read_index(path)  # a missing LMDB is refused here, naming it


def check_labels(net, where):
    """Refuse a net whose softmax classifier (SoftmaxWithLoss on an
    InnerProduct of num_output N) is fed labels of an LMDB reaching N: Caffe
    would train on, its loss a multiple of -ln(FLT_MIN)."""
    producer, labels = {}, {}
    for layer in net.layer:
        if not multi_gpu.in_train(layer):
            continue
        for key, path, top in sources(layer):
            index = index_of(path) if top else None
            if index is not None and index["label"]:
                labels[top] = (max(index["label"]), path)
        for top in layer.top:
            if top not in layer.bottom:  # in-place layers keep the producer of their blob
                producer[top] = layer
        if layer.type != "SoftmaxWithLoss" or len(layer.bottom) < 2:
            continue
        fc, label = producer.get(layer.bottom[0]), labels.get(layer.bottom[1])
        if fc is None or fc.type != "InnerProduct" or label is None:
            continue
        top_label, path = label
        n = fc.inner_product_param.num_output
        if top_label >= n:
            raise ValueError("%s: LMDB %s has label %d, beyond the %d outputs of layer '%s' "
                             "(the classifier of loss '%s'): it needs num_output >= %d"
                             % (where, path, top_label, n, fc.name, layer.name, top_label + 1))


def stage_record(param, weights, ranks):
    """What makes a stage's weights: the net (its LMDB paths replaced by
    their indexes' SHA-1, so a moved run directory is the same run) and the
    solver text (paths dropped), the initial weights' SHA-1, the processes,
    and the code: this training loop and the Python layers the net names
    (common/code_fingerprint.py)."""
    original, where = multi_gpu.train_net(param)
    net = caffe_pb2.NetParameter.FromString(original.SerializeToString())
    data = {}
    for layer in net.layer:
        for key, path, _ in sources(layer):
            index = index_of(path)
            name = "%s.%s" % (layer.name, key)
            data[name] = records.sha1(os.path.join(path, INDEX)) if index is not None else path
            if layer.type == "Data":
                layer.data_param.source = ""
            else:
                opts = json.loads(layer.python_param.param_str)
                opts[key] = ""
                layer.python_param.param_str = json.dumps(opts, sort_keys=True)
    solver = caffe_pb2.SolverParameter.FromString(param.SerializeToString())
    for field in ("net", "train_net", "test_net", "snapshot_prefix"):
        solver.ClearField(field)
    net_text = text_format.MessageToString(net)
    # the loop and every Python layer the net names decide the weights too
    code = code_fingerprint.fingerprint([TRAINER] + code_fingerprint.python_layer_modules(net_text))
    return {"net": net_text, "solver": text_format.MessageToString(solver),
            "data": data, "weights": records.sha1(weights) if weights else None,
            "processes": ranks, "code": code}, original, where
