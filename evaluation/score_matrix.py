"""A score matrix file (.npz): a queries × gallery matrix of scores or
distances under a key (evaluation/cir.py writes "scores" and the ranking
features' distances), with the query and gallery person ids and cameras;
what tools.evaluate --matrix and a report's ranked lists read."""
import numpy as np

from common import cli

MATRIX_KEYS = ("q_pids", "q_cams", "g_pids", "g_cams")


def load_matrix(path, key):
    """(matrix, q_pids, q_cams, g_pids, g_cams) of a --matrix .npz."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError("score matrix file not found: %s" % path) from None
    except (ValueError, OSError) as err:
        raise ValueError("%s: not a score matrix .npz (%s)" % (path, cli.message(err))) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("%s: a single array (.npy); --matrix takes an .npz holding '%s' and %s"
                         % (path, key, ", ".join(MATRIX_KEYS)))
    with z:
        missing = [k for k in (key,) + MATRIX_KEYS if k not in z.files]
        if missing:
            raise ValueError("%s: no key '%s'; keys: %s" % (path, missing[0], ", ".join(z.files)))
        return tuple(z[k] for k in (key,) + MATRIX_KEYS)
