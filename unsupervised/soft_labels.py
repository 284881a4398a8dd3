"""Cross-view soft labels (Geng16 §4.2): every camera-A sample is its own
class and each camera-B sample takes the label of its nearest camera-A
sample, ||z_a − z_b||² on the dictionary codes Z (graph_dictionary) or on
raw deep features (self-training).
"""
from collections import namedtuple

import numpy as np

from unsupervised.neighbours import nearest

SoftLabels = namedtuple("SoftLabels", "a b")
SoftLabels.__doc__ = "Class of each camera-A row (a) and of each camera-B row (b), both in [0, len(A))."


def cross_view_soft_labels(code_a, code_b):
    """SoftLabels(a = arange(len(code_a)), b = index of each code_b row's
    nearest code_a row by Euclidean distance); rows are samples."""
    code_a = np.asarray(code_a)
    return SoftLabels(np.arange(len(code_a)), nearest(code_b, code_a, 1)[:, 0])
