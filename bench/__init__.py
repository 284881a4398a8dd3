"""Benchmarks. Each `bench_*.py` module has a `run()` that measures our code
against a reference measured in the same run and returns a list of
`Result`s; `python -m bench [NAME ...]` runs them and prints the ratios.
Figures are never asserted in tests: timing belongs here."""
