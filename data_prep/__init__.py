"""Dataset parsers, the canonical split format, merging and LMDB builders
(issue 5). First stage of the pipeline: imports nothing from layers/ or tools/."""
