"""The papers' experiments built from the library's stages: stages.py (each
stage a function of keyword arguments, resumable and recorded), recipes.py
(every table row of the two papers, `python -m tools.reproduce`), demo.py
(`make demo`) and quick_check.py (`python -m tools.quick_check`)."""
