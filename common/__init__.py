"""Definitions every stage shares: Caffe access, parameter parsing, safe
writes. Sits at the bottom of the pipeline (data_prep -> layers + prototxt ->
tools) and imports none of them."""
