"""Issue 7: diagrams are drawn by Caffe's own caffe.draw through graphviz."""
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


def test_every_committed_net_is_listed_and_solvers_are_not():
    files = draw_nets.net_files()
    assert files, "no generated prototxt found"
    assert all("solver" not in os.path.basename(p) for _, p in files)
    assert {"mtdnet", "geng16"} <= {family for family, _ in files}
    for family, names in draw_nets.SELECTED.items():  # big families: only the chosen nets
        drawn = {os.path.basename(p)[:-len(".prototxt")] for f, p in files if f == family}
        assert drawn == set(names), family
