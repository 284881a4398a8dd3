# ---
# jupyter:
#   jupytext:
#     formats: py:percent,ipynb
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MTDnet's CIR test
#
# Chen, Chen, Zhang and Huang, *A Multi-task Deep Network for Person
# Re-identification* (AAAI 2017), as this package builds it in BVLC Caffe.
# One network, two tasks on one shared conv1–conv2 trunk:
#
# - **ranking**: a triplet (A1, A2 the same person, B2 another) → 512-D
#   feature → triplet loss;
# - **classification**: the trunk's maps of a pair, concatenated on
#   channels → conv3 … fc8 → same / different person.
#
# At test time MTDnet ranks a gallery by the classifier's same-person
# probability of every (query, gallery) pair: the **CIR** test. MTDnet-trp
# ranks by the distance of the 512-D ranking feature instead. Synthetic
# images in Market-1501's layout, a few training iterations, the CPU.

# %%
import io
import os
import tempfile

import numpy as np
from matplotlib.figure import Figure
from IPython.display import Image as ShowImage, display

from common import caffe_env  # glog quiet, before caffe
import caffe
from data_prep import market1501, synthetic
from data_prep.images import load_bgr
from layers.triplet_data import prepare
from layers.triplet_sampling import sample_triplets
from evaluation import cir
from evaluation import visrank
from networks import mtdnet

caffe.set_mode_cpu()


def show(fig):
    """Display a matplotlib Figure (made without pyplot, so it has no
    notebook display of its own) as a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    display(ShowImage(data=buf.getvalue()))


SIZE = 64        # input side (the paper: 227); conv1–conv2 give 256 maps of 3 × 3 here
work = tempfile.mkdtemp(prefix="mtdnet-cir-")
split = market1501.parse(synthetic.generate(os.path.join(work, "synthetic"), num_ids=8,
                                            quiet=True), multi_query=False)
train = [split["images"][i] for i in split["trials"][0]["train"]]
images = prepare(np.stack([load_bgr(os.path.join(split["root"], im["path"])).transpose(2, 0, 1)
                           for im in train]), SIZE)
pids = np.array([im["pid"] for im in train])
cams = np.array([im["cam"] for im in train])
print("%d training images of %d people, %d cameras" % (len(train), len(set(pids)), len(set(cams))))

# %% [markdown]
# ## One triplet through the two tasks
#
# A triplet (A1, A2, B2): A2 is A1's person seen by another camera, B2
# another person from A2's camera (`layers/triplet_sampling.py`). The train
# net takes triplets as consecutive images; here one, at random (filler)
# weights.

# %%
triplets = sample_triplets(pids, cams, seed=0)
a1, a2, b2 = triplets[0]
print("triplet: A1 id %d cam %d, A2 id %d cam %d, B2 id %d cam %d"
      % (pids[a1], cams[a1], pids[a2], cams[a2], pids[b2], cams[b2]))
net = caffe_env.net_from_spec(mtdnet.mtdnet(data="input", batch=1, size=SIZE), caffe.TRAIN)
net.blobs["data"].data[...] = images[[a1, a2, b2]]
net.forward()
print("ranking task:        norm2 %s -> feat %s -> triplet loss %.4f"
      % (net.blobs["norm2"].data.shape, net.blobs["feat"].data.shape,
         net.blobs["tripletloss"].data.item()))
print("classification task: pairs (A1, A2) and (A1, B2), labels %s -> concat %s -> loss %.4f"
      % (net.blobs["pair_label"].data.ravel(), net.blobs["concat"].data.shape,
         net.blobs["loss"].data.item()))

# %% [markdown]
# ## The concatenated maps
#
# The classifier sees a pair as one 512-channel map: the first 256 channels
# are one image's norm2, the last 256 the other's. Four channels of each
# half, for the positive pair (A1, A2) and the negative pair (A1, B2).

# %%
concat = net.blobs["concat"].data
fig = Figure(figsize=(8, 2.6))
axes = fig.subplots(2, 8)
for row, name in enumerate(("(A1, A2) same", "(A1, B2) different")):
    for k, ch in enumerate((0, 1, 2, 3, 256, 257, 258, 259)):
        ax = axes[row][k]
        ax.imshow(concat[row, ch], cmap="viridis")
        ax.set_xticks([]); ax.set_yticks([])
        ax.set_title("ch %d" % ch, fontsize=7)
    axes[row][0].set_ylabel(name, fontsize=7)
fig.tight_layout()
show(fig)

# %% [markdown]
# ## A few iterations of both tasks
#
# The multi-task loss (triplet + softmax, 1 : 1) trained briefly with SGD
# on batches of 8 triplets, so that the rankings below come from a model
# that has started to learn, not from random weights.

# %%
solver_path = os.path.join(work, "solver.prototxt")
with open(os.path.join(work, "train.prototxt"), "w") as f:
    f.write(mtdnet.net_text(mtdnet.mtdnet(data="input", batch=8, size=SIZE), "mtdnet"))
with open(solver_path, "w") as f:
    f.write(mtdnet.solver("train.prototxt", 30, base_lr=0.01))
cwd = os.getcwd()
os.chdir(work)   # the solver names its net relative to where it runs
try:
    solver = caffe.get_solver(solver_path)
finally:
    os.chdir(cwd)
for it in range(30):
    rows = triplets[(it * 8 + np.arange(8)) % len(triplets)]
    solver.net.blobs["data"].data[...] = images[rows.ravel()]
    solver.step(1)
    if it % 10 == 9:
        print("iteration %d: triplet loss %.4f, softmax loss %.4f"
              % (it + 1, solver.net.blobs["tripletloss"].data.item(),
                 solver.net.blobs["loss"].data.item()))
weights = os.path.join(work, "mtdnet.caffemodel")
solver.net.save(weights)

# %% [markdown]
# ## One query ranked by CIR and by −trp
#
# The test set's query and gallery images. CIR runs the trunk once per
# image, then only conv3 … fc8 on each (query, gallery) concatenation
# (`evaluation/cir.py`); −trp compares the 512-D features. The ranked
# lists mark a true match green, a wrong one red, and the query's own
# camera grey (single-shot: not a candidate).

# %%
trial = split["trials"][0]
def subset(name):
    ims = [split["images"][i] for i in trial[name]]
    data = prepare(np.stack([load_bgr(os.path.join(split["root"], im["path"])).transpose(2, 0, 1)
                             for im in ims]), SIZE)
    return ims, data
q_ims, q_data = subset("query")
g_ims, g_data = subset("gallery")
trunk, head, _ = cir.load_nets(weights, SIZE)
scores = cir.cir_scores(trunk, head, q_data[:1], g_data, passes=2)
distances = cir.trp_distances(trunk, q_data[:1], g_data)

def rgb(ims, indices):
    return [load_bgr(os.path.join(split["root"], ims[i]["path"]))[..., ::-1] for i in indices]

ids = lambda ims, key: np.array([im[key] for im in ims])
for name, matrix, similarity in (("CIR", scores, True), ("-trp", distances, False)):
    ranking = visrank.Ranking(matrix, ids(q_ims, "pid")[:1], ids(q_ims, "cam")[:1],
                              ids(g_ims, "pid"), ids(g_ims, "cam"), "single-shot",
                              lambda side, idx: rgb(q_ims if side == "query" else g_ims, idx),
                              similarity)
    png = os.path.join(work, "ranked_%s.png" % name)
    (_, entries), = visrank.draw(ranking, png, n=1, top=8, title="MTDnet " + name)
    first = next((rank for _, kind, rank in entries if kind == "good"), None)
    print("%s: first true match at rank %s" % (name, first or "> 8"))
    display(ShowImage(filename=png))
