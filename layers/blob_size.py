"""The size limit of a Caffe blob, checked by the data layers in `setup`
from their param_str, before `reshape` asks Caffe for a blob it cannot
allocate: Blob::Reshape CHECKs count <= INT_MAX, and a failed CHECK aborts
the whole process with no Python exception."""
import math

INT_MAX = 2 ** 31 - 1


def check_blob(where, top, shape, keys):
    """Raise ValueError unless a blob of `shape` fits in Caffe; `keys`
    ({param_str key: value}) are the settings that make the shape, named in
    the message so the user knows what to change."""
    count = math.prod(int(d) for d in shape)
    if count > INT_MAX:
        raise ValueError("%s: param_str %s make top '%s' %s = %d values, more than a Caffe blob "
                         "holds (INT_MAX = %d)"
                         % (where, ", ".join("'%s' = %r" % kv for kv in keys.items()), top,
                            "x".join(str(int(d)) for d in shape), count, INT_MAX))
