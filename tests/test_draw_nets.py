"""Diagrams are drawn by Caffe's own caffe.draw through graphviz."""
import os

from caffe import layers as L
import caffe
from networks import diagrams as draw_nets


def test_draw_writes_a_png_of_the_net(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=3)
    src = tmp_path / "tiny.prototxt"
    src.write_text(str(n.to_proto()))
    out = tmp_path / "d" / "tiny.png"
    draw_nets.draw(str(src), str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def _python_data_net(tmp_path, name, source, seed, kernel=3):
    n = caffe.NetSpec()
    n.data = L.Python(module="layers.identity_sampled_data", layer="IdentitySampledData",
                      param_str='{"source": "%s", "seed": %d}' % (source, seed))
    n.conv = L.Convolution(n.data, num_output=4, kernel_size=kernel)
    proto = n.to_proto()
    proto.name = name   # as each training stage names its net
    src = tmp_path / name
    src.write_text(str(proto))
    return str(src)


def test_a_net_is_laid_out_once_whatever_its_data_and_seed(tmp_path, monkeypatch):
    import pydot
    cache = str(tmp_path / "cache")
    a = _python_data_net(tmp_path, "a.prototxt", "/x/train.lmdb", 0)
    b = _python_data_net(tmp_path, "b.prototxt", "/elsewhere/train.lmdb", 7)
    other = _python_data_net(tmp_path, "c.prototxt", "/x/train.lmdb", 0, kernel=5)
    (_, key_a), (_, key_b), (_, key_c) = map(draw_nets.graph, (a, b, other))
    assert key_a == key_b != key_c          # the picture shows the layers, not the data
    draw_nets.draw(a, str(tmp_path / "a.png"), cache=cache)
    assert os.listdir(cache) == [key_a + ".png"]
    laid_out = []
    real = pydot.Dot.create
    monkeypatch.setattr(pydot.Dot, "create", lambda self, *a, **k: laid_out.append(1) or real(
        self, *a, **k))
    draw_nets.draw(b, str(tmp_path / "b.png"), cache=cache)
    assert laid_out == [] and (tmp_path / "b.png").read_bytes() == (tmp_path / "a.png").read_bytes()
    draw_nets.draw(other, str(tmp_path / "c.png"), cache=cache)
    assert laid_out == [1] and sorted(os.listdir(cache)) == sorted([key_a + ".png", key_c + ".png"])


def test_every_committed_net_is_listed_and_solvers_are_not():
    files = draw_nets.net_files()
    assert files, "no generated prototxt found"
    assert all("solver" not in os.path.basename(p) for _, p in files)
    assert {"mtdnet", "geng16"} <= {family for family, _ in files}
    for family, names in draw_nets.SELECTED.items():  # big families: only the chosen nets
        drawn = {os.path.basename(p)[:-len(".prototxt")] for f, p in files if f == family}
        assert drawn == set(names), family
