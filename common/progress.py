"""How often a lasting progress bar redraws: tqdm's own 0.1 s
on a terminal; when nobody watches (CI, nohup, a Slurm log) at most every
30 s, so a log holds a few lines per bar instead of thousands of redraws.
Bars that clear themselves when done (leave=False) take tqdm's
`disable=None` instead: off when not on a terminal."""
import sys

DECIDES_RESULTS = False   # how often bars redraw (common/code_fingerprint.py)

TERMINAL_INTERVAL = 0.1   # tqdm's default mininterval
LOG_INTERVAL = 30         # seconds between redraws into a file or pipe


def mininterval(stream=None):
    """tqdm's `mininterval` for a bar drawn on `stream` (default stderr)."""
    stream = sys.stderr if stream is None else stream
    return TERMINAL_INTERVAL if stream.isatty() else LOG_INTERVAL
