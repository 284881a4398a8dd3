"""Test helpers that run real pycaffe nets: writing a NetSpec to a file and
checking a Python layer's backward against central finite differences."""
import glob
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import numpy as np

from common import caffe_env
import caffe
from caffe import layers as L


def net_from_spec(netspec, phase=caffe.TEST, force_backward=True, weights=None):
    """caffe_env.net_from_spec with backward forced (tests check gradients)."""
    return caffe_env.net_from_spec(netspec, phase, force_backward, weights)


def python_layer_net(module, layer, bottoms, params=None, ntop=1, phase=caffe.TRAIN,
                     loss_weight=None):
    """A net: one Input per bottom array → the Python layer under test."""
    n = caffe.NetSpec()
    names = []
    for i, b in enumerate(bottoms):
        name = "b%d" % i
        n[name] = L.Input(shape=dict(dim=list(b.shape)))
        names.append(name)
    kw = dict(module=module, layer=layer, param_str=json.dumps(params or {}))
    extra = {}
    if loss_weight is not None:
        extra["loss_weight"] = loss_weight
    tops = L.Python(*[n[x] for x in names], python_param=kw, ntop=ntop, **extra)
    tops = tops if isinstance(tops, tuple) else (tops,)
    for i, t in enumerate(tops):
        n["t%d" % i] = t
    net = net_from_spec(n, phase=phase)
    for name, b in zip(names, bottoms):
        net.blobs[name].data[...] = b
    return net, names, ["t%d" % i for i in range(len(tops))]


def check_gradient(net, bottoms, tops, check=None, eps=1e-2, rtol=2e-2, atol=2e-3, seed=0):
    """Compare the analytic gradient of f = Σ_k ⟨top_k, R_k⟩ (R random, fixed)
    with its central finite differences, for every element of the bottoms
    listed in `check` (default: all). The net must be deterministic between
    forwards. Returns the largest absolute error."""
    rng = np.random.RandomState(seed)
    net.forward()
    weights = {t: rng.uniform(-1, 1, net.blobs[t].data.shape).astype(np.float32) for t in tops}

    def objective():
        net.forward()
        return float(sum(np.sum(net.blobs[t].data.astype(np.float64) * weights[t]) for t in tops))

    objective()
    for b in bottoms:
        net.blobs[b].diff[...] = 0
    net.backward(**{t: weights[t] for t in tops})
    analytic = {b: net.blobs[b].diff.copy() for b in bottoms}
    worst = 0.0
    for b in (check or bottoms):
        data = net.blobs[b].data
        flat = data.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = objective()
            flat[i] = old - eps
            down = objective()
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            got = analytic[b].reshape(-1)[i]
            err = abs(got - numeric)
            worst = max(worst, err)
            assert err <= atol + rtol * abs(numeric), (
                "%s[%d]: analytic %.6g vs numeric %.6g" % (b, i, got, numeric))
    return worst


def assert_committed_prototxt_current(generator):
    """The files a networks/ generator module (with generate() and OUT_DIR)
    writes now are exactly the committed ones under prototxt/."""
    files = generator.generate()
    cli = "python -m tools.netgen %s" % generator.__name__.rsplit(".", 1)[-1]
    committed = sorted(f for f in os.listdir(generator.OUT_DIR) if f.endswith(".prototxt"))
    assert committed == sorted(files), "run: " + cli
    for name, text in files.items():
        with open(os.path.join(generator.OUT_DIR, name)) as f:
            assert f.read() == text, "%s is stale; run: %s" % (name, cli)


def caffemodel_without(src, dst, drop):
    """Write a copy of the .caffemodel `src` to `dst` without the layers for
    which drop(layer) is true (a model that lacks some layers)."""
    from caffe.proto import caffe_pb2
    param = caffe_pb2.NetParameter()
    with open(src, "rb") as f:
        param.ParseFromString(f.read())
    keep = [layer for layer in param.layer if not drop(layer)]
    del param.layer[:]
    param.layer.extend(keep)
    with open(dst, "wb") as f:
        f.write(param.SerializeToString())
    return dst


# Caffe's own glog lines on stderr. A CUDA build on a machine without a
# driver logs "Cannot create Cublas handle" / "Cannot create Curand
# generator" at ERROR the first time it is used, in CPU mode too, before any
# line of ours (make check-cuda runs the suite so).
_GLOG_LINE = re.compile(r"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^ ]+:\d+\] "
                        r"|WARNING: Logging before InitGoogleLogging\(\))")


def our_lines(stderr):
    """The lines of a command's stderr that are the package's, not glog's."""
    return [line for line in stderr.splitlines() if not _GLOG_LINE.match(line)]


def query_gallery_lmdbs(tmp_path, num_ids, size):
    """{"query", "gallery": LMDB path} of a synthetic Market-layout set of
    `num_ids` people, images size × size (the MTDnet CIR tests' input)."""
    from data_prep import market1501, synthetic
    from data_prep.lmdb_builder import build_lmdb
    split = market1501.parse(synthetic.generate(str(tmp_path / "synth"), num_ids=num_ids, quiet=True))
    lmdbs = {}
    for subset in ("query", "gallery"):
        lmdbs[subset] = str(tmp_path / subset)
        build_lmdb(split, lmdbs[subset], size, size, subset=subset, verbose=False)
    return lmdbs


# ---- report pages in headless Chromium (Debian's chromium, caffe_build/setup.sh)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Marks every image that did not load (naturalWidth 0) once the page has loaded.
CHROMIUM_CHECK_SCRIPT = """<script>window.addEventListener("load", function () {
  var bad = Array.prototype.filter.call(document.images, function (i) {
    return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.getAttribute("src"); });
  var p = document.createElement("pre"); p.id = "image-check";
  p.textContent = JSON.stringify({images: document.images.length, broken: bad});
  document.body.appendChild(p); });</script>"""


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def page_images(folder):
    parser = _Images()
    with open(os.path.join(folder, "index.html")) as f:
        parser.feed(f.read())
    return parser.srcs


def chromium(*args):
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is not installed (caffe_build/setup.sh installs it: make setup)"
    with tempfile.TemporaryDirectory(prefix="reid-chromium-") as profile:
        proc = subprocess.run([exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + list(args),
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def images_loaded(folder):
    """{"images": how many, "broken": [src of each that did not load]} of
    folder/index.html as Chromium loads it (a copy beside it, with
    CHROMIUM_CHECK_SCRIPT, so that its images resolve the same)."""
    with open(os.path.join(folder, "index.html")) as f:
        text = f.read()
    checked = os.path.join(folder, "checked.html")
    with open(checked, "w") as f:
        f.write(text.replace("</body>", CHROMIUM_CHECK_SCRIPT + "</body>"))
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", "file://" + checked)
    return json.loads(dom.split('<pre id="image-check">', 1)[1].split("</pre>", 1)[0])


def screenshot(page, out, size="1200,1600"):
    """Grey levels of Chromium's screenshot of `page` (an HTML file) at `size`."""
    from PIL import Image
    chromium("--screenshot=" + out, "--window-size=" + size, "file://" + page)
    return np.asarray(Image.open(out).convert("L"), np.float64)



def snapshot_iterations(store):
    """{state.json: iterations} of every Geng16 step-2 training in a
    workflow store's work folder (one being written is skipped)."""
    out = {}
    for path in glob.glob(os.path.join(store, "work", "geng16", "*", "step2", "state.json")):
        try:
            with open(path) as f:
                out[path] = json.load(f)["iter"]
        except (OSError, ValueError):
            pass
    return out


def wait_for_snapshot(proc, store, at_least, timeout=300):
    """Wait until a training of the command `proc` (a Popen with stderr
    piped) has recorded a snapshot of `at_least` iterations; the command
    ending first fails the test with its stderr."""
    deadline = time.time() + timeout
    while not any(i >= at_least for i in snapshot_iterations(store).values()):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no snapshot of %d iterations in %d s" % (at_least, timeout)
        time.sleep(0.5)
