"""Access to pycaffe with the checks Caffe itself does not make.

Caffe reports misuse with glog CHECK failures that abort the whole process;
the functions here test the same conditions first and raise a Python error
that says what is wrong.
"""
import ctypes
import os
import tempfile

# Quiet glog's INFO stream for library use unless the user asked for it.
os.environ.setdefault("GLOG_minloglevel", "1")
# glog >= 0.6 (Debian 12) puts the year in each line's prefix, which Caffe's
# tools/extra/parse_log.py cannot read; glog reads this when it is loaded.
os.environ.setdefault("GLOG_log_year_in_prefix", "0")

import caffe  # noqa: E402  (after the glog setting above)


def _glog_minloglevel():
    """glog's minimum-level flag, a global of the libglog that libcaffe
    loaded. pycaffe's init_log may run only once and leaves the level where
    it put it; this is how it is set back."""
    return ctypes.c_int.in_dll(ctypes.CDLL("libglog.so.1"), "_ZN3fLI17FLAGS_minloglevelE")


def glog_level():
    """glog's current minimum level (0 INFO … 3 FATAL)."""
    return _glog_minloglevel().value


def set_glog_level(level):
    """Set glog's minimum level in this process."""
    _glog_minloglevel().value = level


def read_prototxt(path, message, what):
    """`message` (a caffe_pb2 message) merged from the text file `path`;
    a missing or unparsable file raises naming `what` and the path."""
    from google.protobuf import text_format
    try:
        with open(path) as f:
            text_format.Merge(f.read(), message)
    except FileNotFoundError:
        raise FileNotFoundError("%s not found: %s" % (what, path)) from None
    except text_format.ParseError as err:
        raise ValueError("%s %s does not parse: %s" % (what, path, err)) from None
    return message


def caffe_prefix():
    """Install prefix of the imported pycaffe (…/python/caffe/__init__.py)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__))))


def built_with_cuda():
    """True when the loaded libcaffe was compiled with CUDA (not CPU_ONLY).

    A CUDA build links the CUDA runtime, so after `import caffe` it is mapped
    into this process; a CPU_ONLY build never loads it.
    """
    with open("/proc/self/maps") as maps:
        return any("libcudart" in line for line in maps)


def cuda_device_count():
    """Number of CUDA devices the driver reports; 0 without a driver or GPU."""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            cuda = ctypes.CDLL(name)
        except OSError:
            continue
        if cuda.cuInit(0) != 0:
            return 0
        count = ctypes.c_int(0)
        if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def set_mode(gpu=None):
    """CPU mode for gpu=None, else GPU mode on device `gpu`.

    Raises RuntimeError (instead of Caffe's abort) when this Caffe is a
    CPU-only build or the device does not exist.
    """
    if gpu is None:
        caffe.set_mode_cpu()
        return
    if not built_with_cuda():
        raise RuntimeError(
            "GPU mode requested but this Caffe (%s) is a CPU_ONLY build; "
            "build the CUDA variant with caffe_build/setup.sh --cuda" % caffe_prefix())
    count = cuda_device_count()
    if gpu < 0 or gpu >= count:
        raise RuntimeError(
            "GPU mode requested on device %d but the CUDA driver reports %d GPU(s)"
            % (gpu, count))
    caffe.set_mode_gpu()
    caffe.set_device(gpu)


def net_from_spec(netspec, phase=caffe.TEST, force_backward=False, weights=None):
    """A caffe.Net built from a NetSpec, through a temporary prototxt file
    (pycaffe only reads nets from files)."""
    text = ("force_backward: true\n" if force_backward else "") + str(netspec.to_proto())
    fd, path = tempfile.mkstemp(suffix=".prototxt")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        return caffe.Net(path, phase, weights=weights) if weights else caffe.Net(path, phase)
    finally:
        os.remove(path)


def caffe_models_dir():
    """`models/` of the Caffe source tree the build came from (canonical
    bvlc_* prototxt files and their readme.md with weight URLs and SHA1s),
    installed beside pycaffe by caffe_build/build_caffe.sh."""
    return os.path.join(caffe_prefix(), "models")
