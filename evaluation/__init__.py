"""Evaluation of re-identification rankings as the papers report them
(docs/evaluation.md): distances in blocks, single-shot CMC, the official
Market-1501 CMC and mAP, multi-query pooling, trial averaging, and reports
side by side with the papers' tables, each with a page (index.html) of its
ranked lists, training curves and net diagrams. What is ranked
comes from features of a deploy net (features.py, `extract_to_file`) or
MTDnet's CIR pair scores (cir.py, `score_to_file`); evaluate.py's `report`
turns either into a report. The commands are tools.extract_features,
tools.mtdnet_cir and tools.evaluate.

Every metric is a plain numpy function of a matrix (queries × gallery;
distances, smaller = more alike, or scores with ``similarity=True``) and the
query and gallery person ids and cameras.
"""
