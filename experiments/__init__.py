"""The papers' experiments as one workflow of stages: recipes.py (every
table row of the two papers, as tables, `python -m tools.reproduce`),
plan.py (the stage graph they make, each stage's folder named after its
configuration and data), kinds/ (one module per kind of stage), causes.py
(what decides a stage's result, and so whether it reruns), store.py (the
folder they live in, its records and lock), workflow.py and Snakefile
(Snakemake runs them), demo.py (`make demo`) and quick_check.py
(`python -m tools.quick_check`)."""
