"""Evaluation of re-identification rankings as the papers report them
(REFERENCE.md §5): distances in blocks, single-shot CMC, the official
Market-1501 CMC and mAP, multi-query pooling, trial averaging, and reports
side by side with the papers' tables, each with a page (index.html) of its
ranked lists, training curves and net diagrams (issue 15).

Every metric is a plain numpy function of a matrix (queries × gallery;
distances, smaller = more alike, or scores with ``similarity=True``) and the
query and gallery person ids and cameras.
"""
