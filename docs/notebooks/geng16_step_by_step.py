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
# # Geng16 step by step
#
# Geng, Wang, Xiang and Tian, *Deep Transfer Learning for Person
# Re-identification* (2016), as this package builds it in BVLC Caffe. Five
# ideas, one cell each, on synthetic data and the CPU:
#
# 1. the **K × M batch**: K people, M images each (§4.1: 32 × 2);
# 2. the **in-batch pairs** of the verification loss, and how many there are;
# 3. **pairwise-consistent dropout** (§3.1): one mask per compared pair;
# 4. the **six losses** of one forward pass (SID + PV on GoogLeNet's three heads);
# 5. **two-stepped fine-tuning**, step 1 (§4.1): only the new classifier learns.
#
# Everything below calls the package's own code (`layers/`, `networks/`),
# the code the demo and `tools.reproduce` train with.

# %%
import io

import numpy as np
from matplotlib.figure import Figure
from IPython.display import Image as ShowImage, display

from common import caffe_env  # glog quiet, before caffe
import caffe
from layers import identity_sampled_data as isd
from layers import pair_dropout, pair_generation
from networks import geng16

caffe.set_mode_cpu()


def show(fig):
    """Display a matplotlib Figure (made without pyplot, so it has no
    notebook display of its own) as a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    display(ShowImage(data=buf.getvalue()))

# %% [markdown]
# ## 1. A K × M batch
#
# The data layer (`layers/identity_sampled_data.py`) draws K distinct
# identities per batch, epoch by epoch, then M images of each. Here: a toy
# training set of 40 people with 3 to 6 images each.

# %%
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(40), rng.integers(3, 7, 40))
groups = isd.group_by_label(labels, np.unique(labels))
ids = next(isd.identity_batches(np.unique(labels), geng16.K, seed=1))
batch = isd.choose_images(groups, ids, geng16.M, np.random.RandomState(1))
print("K = %d identities x M = %d images = %d images per batch" % (geng16.K, geng16.M, len(batch)))
print("identities of the first 5 pairs:", labels[batch][:10])

# %% [markdown]
# ## 2. In-batch pairs
#
# The verification (PV) loss compares every unordered pair of images in
# the batch. With 32 × 2 there are far more negatives than positives, so the
# positives are repeated until the two classes are equal
# (`layers/pair_generation.py`, after Ding et al.).

# %%
pos, neg = pair_generation.structure_counts(len(batch), geng16.M)
left, right, same = pair_generation.generate_pairs(labels[batch], np.random.default_rng(0))
print("all pairs: %d = %d positive + %d negative" % (pos + neg, pos, neg))
print("after balancing: %d pairs, %d positive, %d negative"
      % (len(same), int(same.sum()), int((same == 0).sum())))
assert (pos, neg) == (32, 1984) and len(same) == 3968

# %% [markdown]
# ## 3. Pairwise-consistent vs random dropout
#
# Before the two features of a pair are subtracted, dropout removes units.
# Geng16 shares one Bernoulli mask between the two sides of a pair
# (r_i = r_j, Eq. 1), so the difference reflects the two people, not two
# masks. Each image below is one side's mask over a 16 × 16 feature
# (white: kept, scaled by 1 / (1 − ratio)).

# %%
fig = Figure(figsize=(6, 3.4))
axes = fig.subplots(2, 2)
for row, consistent in enumerate((True, False)):
    masks = pair_dropout.draw_masks(np.random.default_rng(3), (16, 16), 2, 0.5, consistent)
    for side in range(2):
        ax = axes[row][side]
        ax.imshow(masks[side], cmap="gray", vmin=0, vmax=2)
        ax.set_xticks([]); ax.set_yticks([])
        ax.set_title("%s, side %s" % ("consistent" if consistent else "random", "ab"[side]),
                     fontsize=9)
    print("%s: the two sides agree on %.0f %% of the units"
          % ("consistent" if consistent else "random", 100 * np.mean(masks[0] == masks[1])))
fig.tight_layout()
show(fig)

# %% [markdown]
# ## 4. The six losses of one forward pass
#
# GoogLeNet has three outputs (pool5 and the two auxiliary heads); each
# gets an identity classifier (SID, softmax over N people) and a
# verification head (PV, same / different). The main head's losses weigh 1
# (SID) and 3 (PV, §5.2); the auxiliary ones 0.3 of that. A small batch of
# 4 × 2 random images here, random (filler) weights, one forward.

# %%
spec = geng16.geng16("googlenet", num_ids=10, data="input", k=4, m=2)
net = caffe_env.net_from_spec(spec, caffe.TRAIN)
net.blobs["data"].data[...] = np.random.default_rng(0).normal(0, 50, net.blobs["data"].data.shape)
net.blobs["label"].data[...] = np.repeat(np.arange(4), 2)
net.forward()
weights = {layer.top[0]: layer.loss_weight[0] for layer in spec.to_proto().layer if layer.loss_weight}
for name, weight in weights.items():
    print("%-16s %.4f  (weight %.1f)" % (name, net.blobs[name].data.item(), weight))
assert len(weights) == 6

# %% [markdown]
# ## 5. Step 1 of two-stepped fine-tuning
#
# Moving to a new set of people, the N-way classifiers `cls_*` are new and
# random. Step 1 trains them alone: every other layer gets learning rate 0
# and BatchNorm keeps its statistics (`networks/geng16.net_param(...,
# step=1)`). After a few SGD iterations every frozen layer is bit-identical
# and only `cls_*` moved. DGDNet (the small base, at half its input) keeps
# this quick.

# %%
import os
import tempfile

from google.protobuf import text_format

work = tempfile.mkdtemp(prefix="geng16-step1-")
param = geng16.net_param(geng16.geng16("dgdnet", num_ids=6, data="input", k=3, m=2, size=(72, 28)),
                         "step1", step=1)
with open(os.path.join(work, "train.prototxt"), "w") as f:
    f.write(text_format.MessageToString(param))
with open(os.path.join(work, "solver.prototxt"), "w") as f:
    f.write(geng16.solver_text(os.path.join(work, "train.prototxt"), 5, base_lr=0.01))
solver = caffe.get_solver(os.path.join(work, "solver.prototxt"))
before = {name: [b.data.copy() for b in blobs] for name, blobs in solver.net.params.items()}
data_rng = np.random.default_rng(1)
for _ in range(5):
    solver.net.blobs["data"].data[...] = data_rng.normal(0, 50, solver.net.blobs["data"].data.shape)
    solver.net.blobs["label"].data[...] = np.repeat(np.arange(3), 2)
    solver.step(1)
changed = [name for name, blobs in solver.net.params.items()
           if any(not np.array_equal(b.data, old) for b, old in zip(blobs, before[name]))]
frozen = [name for name in solver.net.params if name not in changed]
print("changed after 5 iterations:", changed)
print("bit-identical: %d layers, e.g. %s" % (len(frozen), ", ".join(frozen[:5])))
assert changed and all(name.startswith("cls_") for name in changed)
