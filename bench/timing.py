"""Shared timing helpers for the benchmarks."""
import time
from dataclasses import dataclass


@dataclass
class Result:
    """One figure: ours against the reference, as a ratio (higher = better
    for us when `higher_is_better`, e.g. throughput)."""
    name: str
    ours: float
    reference: float
    unit: str
    reference_name: str
    target: str = ""

    @property
    def ratio(self):
        return self.ours / self.reference if self.reference else float("inf")

    def line(self):
        text = "%-44s ours %10.4g %s | %s %10.4g %s | ratio %.3f" % (
            self.name, self.ours, self.unit, self.reference_name, self.reference, self.unit, self.ratio)
        return text + ("  (target: %s)" % self.target if self.target else "")


def best_time(fn, repeat=5, number=1):
    """Best wall time of `number` calls of fn over `repeat` rounds, per call."""
    fn()  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best
