"""GPU architectures compiled into a CUDA shared library (e.g. libcaffe.so),
read from its fatbin headers: the CUDA compile check's proof of sm_90 on a
machine without cuobjdump.

    python -m tools.fatbin_archs lib/libcaffe.so.1.0.0   ->  sm_90

(caffe_build/check_cuda.sh runs that command on the CUDA build.)
"""
import struct

FATBIN_MAGIC = 0xBA55ED50
KIND_PTX = 1


def fatbin_archs(data):
    """Set of 'sm_NN' (device code) and 'compute_NN' (PTX) entries in `data`."""
    archs, pos = set(), 0
    magic = struct.pack("<I", FATBIN_MAGIC)
    while True:
        pos = data.find(magic, pos)
        if pos < 0:
            return archs
        _, _, header, size = struct.unpack_from("<IHHQ", data, pos)
        off, end = pos + header, min(pos + header + size, len(data))
        while off + 32 <= end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, off)
            arch = struct.unpack_from("<I", data, off + 28)[0]
            archs.add(("compute_%d" if kind == KIND_PTX else "sm_%d") % arch)
            if not entry_header:
                break
            off += entry_header + payload
        pos = max(end, pos + 4)

