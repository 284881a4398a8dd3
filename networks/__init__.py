"""NetSpec generators, one module per network family (mtdnet, geng16,
unsupervised) and the shared bases they build on (googlenet, dgdnet) and
solver schedules. `python -m tools.netgen geng16|mtdnet|unsupervised|all`
regenerates the committed prototxt/ from them."""
import os

from common.atomic import write_text


def write_files(files, out_dir):
    """Write {file name: text} into out_dir, each file atomically; returns out_dir."""
    for fname, text in sorted(files.items()):
        write_text(os.path.join(out_dir, fname), text)
    return out_dir
