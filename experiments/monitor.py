"""One line per stage as a workflow runs: when each stage starts and when it
ends (with its time), counted against the stages the run makes, read from
the store itself (a job's mark while it runs, its record when it
completes, its failure file), so it needs nothing from Snakemake and
holds for jobs on a cluster too. Snakemake's own job blocks go to its log
file; the commands' --verbose shows them.

    [ 1/7] start geng16 market1501_t0-4e1f0a2b9c3d
    [ 1/7] done  geng16 market1501_t0-4e1f0a2b9c3d  1m 23s
"""
import os
import threading
import time

from experiments import store as stores

DECIDES_RESULTS = False   # what the terminal shows (common/code_fingerprint.py)
POLL = 0.5                # seconds between looks at the store


def duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm %02ds" % divmod(seconds, 60)
    return "%dh %02dm" % (seconds // 3600, seconds % 3600 // 60)


class Monitor:
    """Watches `stages` (the ones this run makes) in `store` and prints
    their start and end lines on `out`; a context manager around the run."""

    def __init__(self, store, stages, out):
        self.store, self.stages, self.out = store, list(stages), out
        self.started, self.ended = {}, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stage lines", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.look()   # what ended in the last moments

    def _watch(self):
        while not self._stop.wait(POLL):
            self.look()

    def _say(self, word, stage, tail=""):
        done = len(self.ended)
        width = len(str(len(self.stages)))
        self.out.write("[%*d/%d] %-5s %s %s%s\n" % (width, done, len(self.stages), word,
                                                    stage.kind, stage.id, tail))
        self.out.flush()

    def look(self):
        """Print what changed since the last look."""
        for stage in self.stages:
            if stage.id in self.ended:
                continue
            if stage.id not in self.started and os.path.exists(
                    os.path.join(self.store, stores.running_file(stage))):
                self.started[stage.id] = time.time()
                self._say("start", stage)
            failed = os.path.exists(os.path.join(self.store, stores.failure_file(stage)))
            if failed or stores.read_record(self.store, stage) is not None:
                began = self.started.setdefault(stage.id, time.time())
                self.ended.add(stage.id)
                self._say("fail" if failed else "done", stage,
                          "  %s" % duration(time.time() - began))
