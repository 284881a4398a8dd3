"""Geng16 §4.2 unsupervised transfer: graph-regularised dictionary learning and cross-view soft labels."""
