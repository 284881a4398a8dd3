"""Steps of one run directory, each done once and recorded: a split, an
LMDB, a Geng16 or MTDnet training, features, scores, a report. Each writes
its output whole or not at all, beside a record of what made it, and is
reused when asked again with the same causes (common/records.py), so that a
study of many steps (the unsupervised study's rounds, the quick check)
resumes inside its own folder. The workflow's stages call them for their
work (experiments/kinds/)."""
